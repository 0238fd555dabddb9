"""Reliability diagram of the ensemble's out-of-fold probabilities (thin adapter)."""

from spectrovision.provenance.job import job_context
from spectrovision.report.figures import run_calibration

p = snakemake.params
with job_context(snakemake):
    run_calibration(inputs=dict(snakemake.input.items()), outputs=dict(snakemake.output.items()),
                    data=p.data, labels=p.labels, n_bins=p.n_bins, task=p.task)
