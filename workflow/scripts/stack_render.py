"""Stack a representation's rendered images into one array + id CSV per split (thin adapter)."""

import logging

from spectrovision.provenance.records import now_iso, write_provenance
from spectrovision.render.runs import stack_splits

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
started = now_iso()
p = snakemake.params
outputs = dict(zip(p.splits, zip(snakemake.output.stacks, snakemake.output.ids)))
stack_splits(dict(zip(p.shards, snakemake.input.shards)), p.members, outputs)
for stack in snakemake.output.stacks:
    write_provenance(stack, inputs=dict(snakemake.input.items()),
                     params={"splits": p.splits, "shards": p.shards}, code=p.code,
                     started=started)
