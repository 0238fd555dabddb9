"""UMAP of one model x fold's penultimate features over every split (thin adapter)."""

from spectrovision.analysis.embed import run_embed
from spectrovision.data.sheet import sample_sheet
from spectrovision.provenance.job import job_context, named_items

p = snakemake.params
with job_context(snakemake) as job:
    job.extra["embed"] = run_embed(
        inputs=named_items(snakemake.input), outputs=named_items(snakemake.output),
        settings=named_items(p), splits=p.splits,
        label_table=sample_sheet(p.data).attrs["label_table"], seed=p.seed,
        threads=snakemake.threads)
