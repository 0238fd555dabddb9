"""Write the labelled samples (from the rule's params) as results/sheet/labelled.parquet
(thin adapter)."""

from spectrovision.data.sheet import write_labelled_sheet
from spectrovision.provenance.job import job_context

with job_context(snakemake, skip_params=("table",)) as job:
    job.extra["n_labelled"] = write_labelled_sheet(snakemake.params.table,
                                                   snakemake.output.sheet)
