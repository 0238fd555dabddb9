"""QC summary (Markdown) as an HTML page for the report (thin adapter)."""

import logging

from spectrovision.provenance.records import provenance_for
from spectrovision.report.figures import run_qc_page

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
with provenance_for(snakemake):
    run_qc_page(snakemake.input.summary, snakemake.output.page)
