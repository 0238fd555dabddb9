"""The ensemble selection path (thin adapter)."""

from spectrovision.provenance.job import job_context
from spectrovision.report.figures import run_selection_plot

with job_context(snakemake):
    run_selection_plot(inputs=dict(snakemake.input.items()),
                       outputs=dict(snakemake.output.items()))
