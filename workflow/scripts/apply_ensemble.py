"""The trained ensemble's weights over the applied members: predictions.csv, with the whole
lineage (trained weights and fitted members included) in its provenance (thin adapter)."""

from spectrovision.apply.predict import run_apply_ensemble
from spectrovision.provenance.job import job_context, named_items

p = snakemake.params
with job_context(snakemake, snakemake.output.predictions, embed_lineage=True) as job:
    job.extra["trained_results"] = p.trained_results
    run_apply_ensemble(inputs=named_items(snakemake.input),
                       outputs=named_items(snakemake.output), members=p.members,
                       selection=p.selection, data=p.data, labels=p.labels)
