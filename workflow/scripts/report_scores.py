"""Per-label OOF log loss table and bars, and models vs baselines (thin adapter)."""

from spectrovision.provenance.job import job_context
from spectrovision.report.figures import run_score_report

with job_context(snakemake):
    run_score_report(inputs=dict(snakemake.input.items()), outputs=dict(snakemake.output.items()),
                     baselines=snakemake.params.baselines)
