"""Novelty scores of unlabelled samples and the top-k gallery (thin adapter)."""

import logging

from spectrovision.analysis.novelty import run_novelty
from spectrovision.provenance.records import provenance_for

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
p = snakemake.params
with provenance_for(snakemake,
                    skip_params=("train_ids", "unlabelled")) as record:
    record.extra["novelty"] = run_novelty(
        list(snakemake.input.stacks), list(snakemake.input.stack_ids), p.train_ids,
        p.unlabelled, snakemake.input.ensemble, snakemake.input.selection,
        dict(zip(p.members, snakemake.input.members, strict=True)), p.labels,
        epochs=p.epochs, seed=p.seed, top_k=p.top_k, log_mode=p.log_mode, x_axis=p.x_axis,
        outputs=dict(snakemake.output.items()), threads=snakemake.threads)
