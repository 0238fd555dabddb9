"""Render every sample of one ingest shard for one representation (thin adapter)."""

import logging

from spectrovision.provenance.records import now_iso, write_provenance
from spectrovision.render.runs import RenderSpec, render_shard

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
started = now_iso()
p = snakemake.params
render_shard(snakemake.input.runs, p.samples, snakemake.output.images,
             RenderSpec.from_config(p.settings))
write_provenance(snakemake.output.images, inputs=dict(snakemake.input.items()),
                 params={"settings": p.settings, "samples": p.samples}, code=p.code,
                 started=started)
