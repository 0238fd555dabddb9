"""Render every sample of one ingest shard for one representation, with the configured
layout (thin adapter)."""

from spectrovision.data.layouts import get_layout
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake):
    get_layout(p.layout).render_shard(
        samples=p.samples, inputs=dict(snakemake.input.items()),
        outputs=dict(snakemake.output.items()), settings=p.settings)
