"""Correlation matrix of the members' out-of-fold logits (thin adapter)."""

import logging

from spectrovision.provenance.records import provenance_for
from spectrovision.report.figures import run_member_correlation

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
p = snakemake.params
with provenance_for(snakemake):
    run_member_correlation(p.members, list(snakemake.input.oof), p.labels,
                           snakemake.output.plot, snakemake.output.table)
