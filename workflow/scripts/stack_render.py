"""Stack a representation's rendered images into one array + id CSV per split (thin adapter)."""

from dataclasses import replace

from spectrovision.provenance.job import job_context
from spectrovision.render.runs import stack_splits

p = snakemake.params
with job_context(snakemake, skip_params=("members",)) as job:
    stack_splits(dict(zip(p.shards, snakemake.input.shards)), p.members,
                 dict(zip(p.splits, zip(snakemake.output.stacks, snakemake.output.ids))))
    for stack in snakemake.output.stacks[1:]:  # one sidecar per stack; job_context: the first
        replace(job, output=str(stack)).write()
