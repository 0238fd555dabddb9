"""The train jobs' curve.png images tiled model x fold (thin adapter)."""

import logging

from spectrovision.provenance.records import provenance_for
from spectrovision.report.figures import run_curve_grid

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
with provenance_for(snakemake):
    run_curve_grid(list(snakemake.input.curves), snakemake.params.jobs, snakemake.output.grid)
