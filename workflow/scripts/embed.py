"""UMAP of one model x fold's penultimate features over every split (thin adapter)."""

from spectrovision.analysis.embed import run_embed
from spectrovision.data.sheet import sample_sheet
from spectrovision.provenance.job import job_context

p = snakemake.params
inputs = snakemake.input
with job_context(snakemake) as record:
    record.extra["embed"] = run_embed(
        inputs.weights, list(inputs.stacks), list(inputs.stack_ids), p.splits,
        sample_sheet(p.data).attrs["label_table"], color_label=p.color_label,
        n_neighbors=p.n_neighbors, min_dist=p.min_dist, seed=p.seed,
        outputs=dict(snakemake.output.items()), threads=snakemake.threads)
