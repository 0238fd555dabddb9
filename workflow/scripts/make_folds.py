"""Make the cross-validation folds from the label files (thin adapter)."""

import logging

from spectrovision.data.folds import write_folds
from spectrovision.provenance.records import provenance_for

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
p = snakemake.params
with provenance_for(snakemake) as record:
    table = write_folds(snakemake.input.metadata, list(snakemake.input.labels),
                        snakemake.output.folds, p.n_folds, p.seed, p.val_in_folds)
    sizes = table["fold"].value_counts().sort_index()
    record.extra["fold_sizes"] = {int(k): int(v) for k, v in sizes.items()}
logging.info("fold sizes: %s", record.extra["fold_sizes"])
