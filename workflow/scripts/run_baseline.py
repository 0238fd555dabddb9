"""Fit one baseline per fold and write members/{baseline}/ (thin adapter)."""

from spectrovision.ensemble.baselines import run_baseline
from spectrovision.provenance.job import job_context

with job_context(snakemake):
    run_baseline(snakemake.wildcards.baseline, snakemake.params.data, snakemake.input.folds,
                 snakemake.params.labels, dict(snakemake.params.settings), snakemake.params.clip,
                 snakemake.output.oof, snakemake.output.test, stacks=list(snakemake.input.stacks),
                 stack_ids=list(snakemake.input.stack_ids), seed=snakemake.params.seed,
                 task=snakemake.params.task)
