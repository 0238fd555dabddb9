"""Novelty scores of unlabelled samples and the top-k gallery (thin adapter)."""

from spectrovision.analysis.novelty import run_novelty
from spectrovision.provenance.job import job_context, named_items

p = snakemake.params
with job_context(snakemake, skip_params=("train_ids", "unlabelled")) as job:
    job.extra["novelty"] = run_novelty(
        inputs=named_items(snakemake.input), outputs=named_items(snakemake.output),
        settings=named_items(p), train_ids=p.train_ids, unlabelled=p.unlabelled,
        members=p.members, labels=p.labels, seed=p.seed, log_mode=p.log_mode,
        axes=p.axes, threads=snakemake.threads, task=p.task)
