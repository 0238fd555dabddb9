"""Train one model x fold (thin adapter)."""

from spectrovision.data.sheet import sample_sheet
from spectrovision.provenance.job import job_context
from spectrovision.learn.train import run_train

p = snakemake.params
with job_context(snakemake) as record:
    sheet = sample_sheet(p.data)
    metrics = run_train(list(snakemake.input.stacks), list(snakemake.input.stack_ids),
                        snakemake.input.folds, sheet.attrs["label_table"], p.labels,
                        dict(p.settings), p.fold, p.task, dict(snakemake.output.items()),
                        checkpoint=p.checkpoint, threads=snakemake.threads, metadata=sheet)
    record.extra["metrics"] = metrics
