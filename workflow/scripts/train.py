"""Train one model x fold (thin adapter)."""

import logging

from spectrovision.ensemble.combine import sample_sheet
from spectrovision.provenance.records import provenance_for
from spectrovision.learn.train import run_train

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
p = snakemake.params
with provenance_for(snakemake) as record:
    sheet = sample_sheet(p.data)
    metrics = run_train(list(snakemake.input.stacks), list(snakemake.input.stack_ids),
                        snakemake.input.folds, sheet.attrs["label_table"], p.labels,
                        dict(p.settings), p.fold, p.task, dict(snakemake.output.items()),
                        checkpoint=p.checkpoint, threads=snakemake.threads, metadata=sheet)
    record.extra["metrics"] = metrics
