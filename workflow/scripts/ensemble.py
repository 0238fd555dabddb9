"""Select and combine members; write scores, selection and ensemble logits (thin adapter)."""

import logging

from spectrovision.ensemble.build import run_ensemble
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake):
    result = run_ensemble(inputs=dict(snakemake.input.items()),
                          outputs=dict(snakemake.output.items()), settings=p.settings,
                          members=p.members, candidates=p.candidates, data=p.data,
                          labels=p.labels, task=p.task)
logging.info("members %s, OOF mean log loss %.5f (optimistic: chosen on OOF)",
             result.selection["members"], result.selection["oof_mean_log_loss"]["ensemble"])
