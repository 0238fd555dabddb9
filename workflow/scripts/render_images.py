"""Resize every decoded image of one shard for one representation (thin adapter, data.layout
images)."""

import logging

from spectrovision.data.images import ImageSpec, render_image_shard
from spectrovision.provenance.records import now_iso, write_provenance

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
started = now_iso()
p = snakemake.params
render_image_shard(snakemake.input.runs, p.samples, snakemake.output.images,
                   ImageSpec.from_config(p.settings))
write_provenance(snakemake.output.images, inputs=dict(snakemake.input.items()),
                 params={"settings": p.settings, "samples": p.samples}, code=p.code,
                 started=started)
