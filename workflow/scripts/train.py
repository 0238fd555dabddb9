"""Train one model x fold (thin adapter)."""

from spectrovision.data.sheet import read_labelled_sheet
from spectrovision.learn.train import run_train
from spectrovision.provenance.job import job_context, named_items

p = snakemake.params
with job_context(snakemake) as job:
    label_table, rows = read_labelled_sheet(snakemake.input.labelled, p.labels)
    job.extra["metrics"] = run_train(
        inputs=named_items(snakemake.input), outputs=named_items(snakemake.output),
        settings=p.settings, fold=p.fold, task=p.task, label_table=label_table,
        labels=p.labels, checkpoint=p.checkpoint, threads=snakemake.threads, metadata=rows,
        code=p.code)
