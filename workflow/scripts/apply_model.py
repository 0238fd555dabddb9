"""Predict every sample of the new data set with one trained model x fold (thin adapter)."""

from spectrovision.apply.model import run_apply_model
from spectrovision.data.sheet import sample_sheet
from spectrovision.provenance.job import job_context, named_items

p = snakemake.params
with job_context(snakemake, skip_params=("samples",)) as job:
    job.extra["tta"] = run_apply_model(
        inputs=named_items(snakemake.input), outputs=named_items(snakemake.output),
        settings=p.settings, sample_ids=p.samples, labels=p.labels, threads=snakemake.threads,
        metadata=sample_sheet(p.data, labels_required=False) if p.data else None)
