"""Reliability diagram of the ensemble's out-of-fold probabilities (thin adapter)."""

import logging

from spectrovision.provenance.records import provenance_for
from spectrovision.report.figures import run_calibration

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
p = snakemake.params
with provenance_for(snakemake):
    run_calibration(snakemake.input.oof, p.data, p.labels, p.n_bins, snakemake.output.plot,
                    snakemake.output.table, p.task)
