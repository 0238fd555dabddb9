"""Per-label OOF log loss table and bars, and models vs baselines (thin adapter)."""

import logging

from spectrovision.provenance.records import provenance_for
from spectrovision.report.figures import run_score_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
out = snakemake.output
with provenance_for(snakemake):
    run_score_report(snakemake.input.scores, snakemake.params.baselines, out.table, out.page,
                     out.bars, out.baselines)
