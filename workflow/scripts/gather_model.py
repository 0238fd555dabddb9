"""Gather one model's per-fold OOF and test logits into members/{model}/ (thin adapter)."""

from spectrovision.ensemble.combine import run_gather
from spectrovision.provenance.job import job_context

with job_context(snakemake):
    run_gather(list(snakemake.input.oof), list(snakemake.input.test), snakemake.input.folds,
               snakemake.params.labels, snakemake.params.clip, snakemake.output.oof,
               snakemake.output.test, snakemake.params.task)
