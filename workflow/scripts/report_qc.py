"""QC summary (Markdown) as an HTML page for the report (thin adapter)."""

from spectrovision.provenance.job import job_context
from spectrovision.report.figures import run_qc_page

with job_context(snakemake):
    run_qc_page(inputs=dict(snakemake.input.items()), outputs=dict(snakemake.output.items()))
