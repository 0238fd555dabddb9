"""Fit one tabular member per fold and write members/{tabular}/ (thin adapter)."""

import logging

from spectrovision.tabular import run_tabular

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
run_tabular(snakemake.wildcards.tabular, snakemake.params.data, snakemake.input.folds,
            snakemake.params.labels, dict(snakemake.params.settings), snakemake.params.clip,
            list(snakemake.input.stacks), list(snakemake.input.stack_ids),
            dict(snakemake.output.items()), num_threads=snakemake.params.num_threads)
