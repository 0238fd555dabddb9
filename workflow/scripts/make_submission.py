"""Write the submission in the exact submission_format layout, with provenance (thin adapter).

Its provenance embeds the whole lineage of its inputs (renders, models, folds, members).
"""

from spectrovision.ensemble.submission import run_submission
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake, snakemake.output.submission, skip_params=("unlabelled",),
                 embed_lineage=True):
    run_submission(inputs=dict(snakemake.input.items()), outputs=dict(snakemake.output.items()),
                   labels=p.labels, unlabelled=p.unlabelled, clip=p.clip, task=p.task)
