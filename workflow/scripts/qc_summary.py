"""Combine the shards' QC tables into qc.parquet and a Markdown summary (thin adapter)."""

from spectrovision.data.ingest import write_qc_summary
from spectrovision.provenance.job import job_context

with job_context(snakemake):
    write_qc_summary(list(snakemake.input.shards), snakemake.output.qc,
                     snakemake.output.summary, snakemake.params.findings)
