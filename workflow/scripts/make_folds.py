"""Make the cross-validation folds from the label files (thin adapter)."""

import logging

from spectrovision.folds import write_folds
from spectrovision.provenance import now_iso, write_provenance

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
started = now_iso()
p = snakemake.params
table = write_folds(snakemake.input.metadata, list(snakemake.input.labels),
                    snakemake.output.folds, p.n_folds, p.seed, p.val_in_folds)
logging.info("folds: %s", table["fold"].value_counts().sort_index().to_dict())
write_provenance(snakemake.output.folds, inputs=dict(snakemake.input.items()),
                 params={"n_folds": p.n_folds, "seed": p.seed, "val_in_folds": p.val_in_folds},
                 code=p.code, started=started)
