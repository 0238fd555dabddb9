"""Write the submission in the exact submission_format layout, with provenance (thin adapter).

Its provenance embeds the whole lineage of its inputs (renders, models, folds, members).
"""

import logging

from spectrovision.provenance.records import provenance_for
from spectrovision.ensemble.submission import run_submission

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
p = snakemake.params
with provenance_for(snakemake, snakemake.output.submission, skip_params=("unlabelled",),
                    embed_lineage=True):
    run_submission(snakemake.input.test, p.labels,
                   snakemake.input.get("format") if p.has_format else None, p.unlabelled,
                   p.clip, snakemake.output.submission, snakemake.input.oof, p.task)
