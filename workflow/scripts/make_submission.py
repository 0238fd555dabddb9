"""Write the submission in the exact submission_format layout, with provenance (thin adapter).

Its provenance embeds the whole lineage of its inputs (renders, models, folds, members).
"""

from spectrovision.provenance.job import job_context
from spectrovision.ensemble.submission import run_submission

p = snakemake.params
with job_context(snakemake, snakemake.output.submission, skip_params=("unlabelled",),
                    embed_lineage=True):
    run_submission(snakemake.input.test, p.labels,
                   snakemake.input.get("format") if p.has_format else None, p.unlabelled,
                   p.clip, snakemake.output.submission, snakemake.input.oof, p.task)
