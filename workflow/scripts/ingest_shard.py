"""Ingest the raw runs of one shard: validated Parquet runs + the shard's QC table (thin adapter)."""

import logging

from spectrovision.data.sheet import RunColumns
from spectrovision.data.ingest import ingest_shard
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake, skip_params=("samples",)) as record:
    qc = ingest_shard(p.samples, snakemake.output.runs, snakemake.output.qc,
                      RunColumns(**p.columns), p.qc)
    record.extra["n_samples"] = len(qc)
    record.extra["n_rows"] = int(qc["n_rows"].sum())
logging.info("ingested %d runs, %d rows kept", len(qc), int(qc["n_rows"].sum()))
