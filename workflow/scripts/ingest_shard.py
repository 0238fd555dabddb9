"""Ingest the samples of one shard with the configured layout: cached runs or decoded images
+ the shard's QC table (thin adapter)."""

from spectrovision.data.layouts import get_layout
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake, skip_params=("samples",)) as job:
    job.extra.update(get_layout(p.layout).ingest_shard(
        samples=p.samples, outputs=dict(snakemake.output.items()),
        settings={"columns": p.columns, "qc": p.qc}))
