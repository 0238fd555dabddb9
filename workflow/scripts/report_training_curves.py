"""The train jobs' curve.png images tiled model x fold (thin adapter)."""

from spectrovision.provenance.job import job_context
from spectrovision.report.figures import run_curve_grid

with job_context(snakemake):
    run_curve_grid(inputs=dict(snakemake.input.items()), outputs=dict(snakemake.output.items()),
                   jobs=snakemake.params.jobs)
