"""Predict one model x fold with time-width TTA (thin adapter)."""

from spectrovision.data.sheet import sample_sheet
from spectrovision.learn.predict import run_predict
from spectrovision.provenance.job import job_context, named_items

p = snakemake.params
with job_context(snakemake, skip_params=("unlabelled",)) as job:
    job.extra["tta"] = run_predict(
        inputs=named_items(snakemake.input), outputs=named_items(snakemake.output),
        settings=named_items(p), fold=p.fold, unlabelled=p.unlabelled,
        threads=snakemake.threads, metadata=sample_sheet(p.data) if p.data else None)
