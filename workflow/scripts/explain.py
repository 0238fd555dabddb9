"""Grad-CAM++ grid of one model x fold over its held-out renders (thin adapter)."""

from spectrovision.data.sheet import sample_sheet
from spectrovision.analysis.explain import run_explain
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake) as record:
    label_table = sample_sheet(p.data).attrs["label_table"]
    record.extra["explain"] = run_explain(
        snakemake.input.weights, list(snakemake.input.stacks), list(snakemake.input.stack_ids),
        snakemake.input.folds, label_table, samples_per_label=p.samples_per_label,
        labels=p.labels, log_mode=p.log_mode, x_axis=p.x_axis,
        outputs=dict(snakemake.output.items()), threads=snakemake.threads)
