"""Select and combine members; write scores, selection and ensemble logits (thin adapter)."""

import logging

from spectrovision.ensemble.combine import run_ensemble
from spectrovision.provenance.job import job_context

p = snakemake.params
with job_context(snakemake):
    result = run_ensemble(p.members, list(snakemake.input.oof), list(snakemake.input.test), p.data,
                          p.labels, p.candidates, p.selection, p.listed, p.per_label_weights,
                          p.clip, dict(snakemake.output.items()), p.task)
logging.info("members %s, OOF mean log loss %.5f (optimistic: chosen on OOF)",
             result.selection["members"], result.selection["oof_mean_log_loss"]["ensemble"])
