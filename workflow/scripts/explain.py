"""Grad-CAM++ grid of one model x fold over its held-out renders (thin adapter)."""

from spectrovision.analysis.explain import run_explain
from spectrovision.data.sheet import sample_sheet
from spectrovision.provenance.job import job_context, named_items

p = snakemake.params
with job_context(snakemake) as job:
    job.extra["explain"] = run_explain(
        inputs=named_items(snakemake.input), outputs=named_items(snakemake.output),
        settings=named_items(p), label_table=sample_sheet(p.data).attrs["label_table"],
        log_mode=p.log_mode, axes=p.axes, threads=snakemake.threads)
