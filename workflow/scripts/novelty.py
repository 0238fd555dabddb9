"""Novelty scores of unlabelled samples and the top-k gallery (thin adapter)."""

from spectrovision.analysis.novelty import run_novelty
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake, skip_params=("train_ids", "unlabelled")) as record:
    record.extra["novelty"] = run_novelty(
        list(snakemake.input.stacks), list(snakemake.input.stack_ids), p.train_ids,
        p.unlabelled, snakemake.input.ensemble, snakemake.input.selection,
        dict(zip(p.members, snakemake.input.members, strict=True)), p.labels,
        epochs=p.epochs, seed=p.seed, top_k=p.top_k, log_mode=p.log_mode, x_axis=p.x_axis,
        outputs=dict(snakemake.output.items()), threads=snakemake.threads)
