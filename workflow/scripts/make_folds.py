"""Make the cross-validation folds of the labelled samples (thin adapter)."""

import logging

from spectrovision.data.folds import write_folds
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake) as job:
    table = write_folds(snakemake.input.labelled, p.labels, snakemake.output.folds, p.n_folds,
                        p.seed, p.val_in_folds)
    sizes = table["fold"].value_counts().sort_index()
    job.extra["fold_sizes"] = {int(k): int(v) for k, v in sizes.items()}
logging.info("fold sizes: %s", job.extra["fold_sizes"])
