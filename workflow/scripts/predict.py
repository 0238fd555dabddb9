"""Predict one model x fold with time-width TTA (thin adapter)."""

import logging

from spectrovision.ensemble.combine import sample_sheet
from spectrovision.learn.predict import run_predict
from spectrovision.provenance.records import provenance_for

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
p = snakemake.params
with provenance_for(snakemake, skip_params=("unlabelled",)) as record:
    record.extra["tta"] = run_predict(
        snakemake.input.weights, list(snakemake.input.stacks), list(snakemake.input.stack_ids),
        snakemake.input.folds, p.unlabelled, p.fold, p.tta_n_widths, p.tta_step, p.batch_size,
        dict(snakemake.output.items()), threads=snakemake.threads,
        metadata=sample_sheet(p.data) if p.data else None)
