"""The ensemble selection path (thin adapter)."""

import logging

from spectrovision.provenance.records import provenance_for
from spectrovision.report.figures import run_selection_plot

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
with provenance_for(snakemake):
    run_selection_plot(snakemake.input.selection, snakemake.output.plot)
