"""Fit one baseline per fold and write members/{baseline}/ (thin adapter)."""

import logging

from spectrovision.ensemble.baselines import run_baseline
from spectrovision.provenance.records import provenance_for

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
with provenance_for(snakemake):
    run_baseline(snakemake.wildcards.baseline, snakemake.params.data, snakemake.input.folds,
                 snakemake.params.labels, dict(snakemake.params.settings), snakemake.params.clip,
                 snakemake.output.oof, snakemake.output.test, stacks=list(snakemake.input.stacks),
                 stack_ids=list(snakemake.input.stack_ids), seed=snakemake.params.seed,
                 task=snakemake.params.task)
