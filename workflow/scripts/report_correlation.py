"""Correlation matrix of the members' out-of-fold logits (thin adapter)."""

from spectrovision.provenance.job import job_context
from spectrovision.report.figures import run_member_correlation

p = snakemake.params
with job_context(snakemake):
    run_member_correlation(inputs=dict(snakemake.input.items()),
                           outputs=dict(snakemake.output.items()), members=p.members,
                           labels=p.labels)
