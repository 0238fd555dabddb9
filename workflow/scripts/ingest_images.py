"""Decode and check the image files of one shard: cached NPY pixels + the shard's QC table
(thin adapter, data.layout images)."""

import logging

from spectrovision.data.images import ingest_image_shard
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake, skip_params=("samples",)) as record:
    qc = ingest_image_shard(p.samples, snakemake.output.runs, snakemake.output.qc, p.qc)
    record.extra["n_samples"] = len(qc)
logging.info("decoded %d images", len(qc))
