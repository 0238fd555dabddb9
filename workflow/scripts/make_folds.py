"""Make the cross-validation folds from the label files (thin adapter)."""

import logging

from spectrovision.data.folds import write_folds
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake) as record:
    table = write_folds(snakemake.input.metadata, list(snakemake.input.labels),
                        snakemake.output.folds, p.n_folds, p.seed, p.val_in_folds)
    sizes = table["fold"].value_counts().sort_index()
    record.extra["fold_sizes"] = {int(k): int(v) for k, v in sizes.items()}
logging.info("fold sizes: %s", record.extra["fold_sizes"])
