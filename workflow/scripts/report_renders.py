"""A grid of example renders of one representation (thin adapter)."""

from spectrovision.provenance.job import job_context
from spectrovision.report.figures import run_render_examples

p = snakemake.params
with job_context(snakemake):
    run_render_examples(inputs=dict(snakemake.input.items()),
                        outputs=dict(snakemake.output.items()), n_examples=p.n_examples,
                        log_mode=p.log_mode, axes=p.axes,
                        title=f"representation {snakemake.wildcards.rep}")
