"""Write trained_manifest.json: what an apply run needs of this trained run (thin adapter)."""

from spectrovision.apply.manifest import run_trained_manifest
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake, skip_params=("recipe", "members")):
    run_trained_manifest(inputs=dict(snakemake.input.items()),
                         outputs=dict(snakemake.output.items()), recipe=p.recipe,
                         layout=p.layout, labels=p.labels, image_shapes=p.image_shapes,
                         members=p.members)
