"""A grid of example renders of one representation (thin adapter)."""

import logging

from spectrovision.provenance.records import provenance_for
from spectrovision.report.figures import run_render_examples

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
p = snakemake.params
with provenance_for(snakemake):
    run_render_examples(snakemake.input.stack, snakemake.input.ids, snakemake.output.grid,
                        n_examples=p.n_examples, log_mode=p.log_mode, x_axis=p.x_axis,
                        title=f"representation {snakemake.wildcards.rep}")
