"""A trained baseline's or tabular member's fitted folds applied to the new data set (thin
adapter)."""

from spectrovision.apply.predict import run_apply_member
from spectrovision.provenance.job import job_context, named_items

p = snakemake.params
with job_context(snakemake):
    run_apply_member(name=snakemake.wildcards.member, inputs=named_items(snakemake.input),
                     outputs=named_items(snakemake.output), data=p.data, labels=p.labels,
                     num_threads=p.num_threads)
