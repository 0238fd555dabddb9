"""Combine the shards' QC tables into qc.parquet and a Markdown summary (thin adapter)."""

import logging

from spectrovision.data.ingest import write_qc_summary
from spectrovision.provenance.records import provenance_for

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
with provenance_for(snakemake):
    write_qc_summary(list(snakemake.input.shards), snakemake.output.qc,
                     snakemake.output.summary, snakemake.params.findings)
