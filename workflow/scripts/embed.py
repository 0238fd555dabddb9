"""UMAP of one model x fold's penultimate features over every split (thin adapter)."""

import logging

from spectrovision.analysis.embed import run_embed
from spectrovision.ensemble.combine import sample_sheet
from spectrovision.provenance.records import provenance_for

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
p = snakemake.params
inputs = snakemake.input
with provenance_for(snakemake) as record:
    record.extra["embed"] = run_embed(
        inputs.weights, list(inputs.stacks), list(inputs.stack_ids), p.splits,
        sample_sheet(p.data).attrs["label_table"], color_label=p.color_label,
        n_neighbors=p.n_neighbors, min_dist=p.min_dist, seed=p.seed,
        outputs=dict(snakemake.output.items()), threads=snakemake.threads)
