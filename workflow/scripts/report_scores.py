"""Per-label OOF log loss table and bars, and models vs baselines (thin adapter)."""

from spectrovision.provenance.job import job_context
from spectrovision.report.figures import run_score_report

out = snakemake.output
with job_context(snakemake):
    run_score_report(snakemake.input.scores, snakemake.params.baselines, out.table, out.page,
                     out.bars, out.baselines)
