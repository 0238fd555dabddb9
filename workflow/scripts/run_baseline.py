"""Fit one baseline per fold and write members/{baseline}/ (thin adapter)."""

from spectrovision.ensemble.baselines import run_baseline
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake):
    run_baseline(name=snakemake.wildcards.baseline, inputs=dict(snakemake.input.items()),
                 outputs=dict(snakemake.output.items()), settings=p.settings, data=p.data,
                 labels=p.labels, seed=p.seed, clip=p.clip, task=p.task,
                 fold_combine=p.fold_combine)
