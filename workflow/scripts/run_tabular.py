"""Fit one tabular member per fold and write members/{tabular}/ (thin adapter)."""

import os

# LightGBM's OpenMP threads busy-wait by default: on a busy machine that makes 2 threads
# ~6x slower than 1 (demo, bench in docs/benchmarks.md); passive waiting avoids it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from spectrovision.ensemble.tabular import run_tabular  # noqa: E402
from spectrovision.provenance.job import job_context  # noqa: E402

with job_context(snakemake):
    run_tabular(snakemake.wildcards.tabular, snakemake.params.data, snakemake.input.folds,
                snakemake.params.labels, dict(snakemake.params.settings), snakemake.params.clip,
                list(snakemake.input.stacks), list(snakemake.input.stack_ids),
                dict(snakemake.output.items()), num_threads=snakemake.params.num_threads,
                task=snakemake.params.task)
