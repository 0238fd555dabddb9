"""Combine the shards' QC tables into qc.parquet and a Markdown summary, with the configured
layout's summariser (thin adapter)."""

from spectrovision.data.layouts import get_layout
from spectrovision.provenance.job import job_context

with job_context(snakemake):
    get_layout(snakemake.params.layout).write_qc_summary(
        inputs=dict(snakemake.input.items()), outputs=dict(snakemake.output.items()),
        findings=snakemake.params.findings)
