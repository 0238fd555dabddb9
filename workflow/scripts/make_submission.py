"""Write the submission in the exact submission_format layout, with provenance (thin adapter)."""

import logging

from spectrovision.provenance import now_iso, write_provenance
from spectrovision.submission import run_submission

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
started = now_iso()
p = snakemake.params
run_submission(snakemake.input.test, p.labels,
               snakemake.input.get("format") if p.has_format else None, p.unlabelled, p.clip,
               snakemake.output.submission)
write_provenance(snakemake.output.submission, inputs=dict(snakemake.input.items()),
                 params={k: v for k, v in p.items() if k != "unlabelled"}, code=p.code,
                 started=started)
