"""Reliability diagram of the ensemble's out-of-fold probabilities (thin adapter)."""

from spectrovision.provenance.job import job_context
from spectrovision.report.figures import run_calibration

p = snakemake.params
with job_context(snakemake):
    run_calibration(snakemake.input.oof, p.data, p.labels, p.n_bins, snakemake.output.plot,
                    snakemake.output.table, p.task)
