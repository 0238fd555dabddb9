"""Predict one model x fold with time-width TTA (thin adapter)."""

from spectrovision.data.sheet import sample_sheet
from spectrovision.learn.predict import run_predict
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake, skip_params=("unlabelled",)) as record:
    record.extra["tta"] = run_predict(
        snakemake.input.weights, list(snakemake.input.stacks), list(snakemake.input.stack_ids),
        snakemake.input.folds, p.unlabelled, p.fold, p.tta_n_widths, p.tta_step, p.batch_size,
        dict(snakemake.output.items()), threads=snakemake.threads,
        metadata=sample_sheet(p.data) if p.data else None)
