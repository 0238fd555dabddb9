"""Gather one model's per-fold OOF and test logits into members/{model}/ (thin adapter)."""

from spectrovision.ensemble.gather import run_gather
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake):
    run_gather(inputs=dict(snakemake.input.items()), outputs=dict(snakemake.output.items()),
               labels=p.labels, clip=p.clip, task=p.task, fold_combine=p.fold_combine)
