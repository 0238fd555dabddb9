"""Stack one split's rendered images into one array + id CSV (thin adapter)."""

from spectrovision.provenance.job import job_context
from spectrovision.render.runs import stack_splits

p = snakemake.params
out = snakemake.output
with job_context(snakemake, skip_params=("members",)):
    stack_splits(dict(zip(p.shards, snakemake.input.shards)),
                 {snakemake.wildcards.split: p.members},
                 {snakemake.wildcards.split: (out.stack, out.ids)})
