"""Fit one tabular member per fold and write members/{tabular}/ (thin adapter)."""

import os

# LightGBM's OpenMP threads busy-wait by default: on a busy machine that makes 2 threads
# ~6x slower than 1 (demo, bench in docs/benchmarks.md); passive waiting avoids it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from spectrovision.ensemble.tabular import run_tabular  # noqa: E402
from spectrovision.provenance.job import job_context  # noqa: E402

p = snakemake.params
with job_context(snakemake):
    run_tabular(name=snakemake.wildcards.tabular, inputs=dict(snakemake.input.items()),
                outputs=dict(snakemake.output.items()), settings=p.settings, data=p.data,
                labels=p.labels, clip=p.clip, num_threads=p.num_threads, task=p.task,
                fold_combine=p.fold_combine)
