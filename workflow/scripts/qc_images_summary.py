"""Combine the shards' image QC tables into qc.parquet and a Markdown summary (thin adapter,
data.layout images)."""

from spectrovision.data.images import write_image_qc_summary
from spectrovision.provenance.job import job_context

with job_context(snakemake):
    write_image_qc_summary(list(snakemake.input.shards), snakemake.output.qc,
                           snakemake.output.summary, snakemake.params.findings)
