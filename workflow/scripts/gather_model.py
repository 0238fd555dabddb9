"""Gather one model's per-fold OOF and test logits into members/{model}/ (thin adapter)."""

import logging

from spectrovision.ensemble.combine import run_gather
from spectrovision.provenance.records import provenance_for

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
with provenance_for(snakemake):
    run_gather(list(snakemake.input.oof), list(snakemake.input.test), snakemake.input.folds,
               snakemake.params.labels, snakemake.params.clip, snakemake.output.oof,
               snakemake.output.test, snakemake.params.task)
