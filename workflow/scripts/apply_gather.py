"""One applied model's folds averaged into its logits (thin adapter)."""

from spectrovision.apply.predict import run_apply_gather
from spectrovision.provenance.job import job_context, named_items

p = snakemake.params
with job_context(snakemake):
    run_apply_gather(inputs=named_items(snakemake.input), outputs=named_items(snakemake.output),
                     labels=p.labels, clip=p.clip, task=p.task, fold_combine=p.fold_combine)
