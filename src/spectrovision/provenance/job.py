"""One shape for every workflow script: log to the job's log file, record provenance.

A script is then only its call into the library::

    from spectrovision.provenance.job import job_context

    with job_context(snakemake) as job:
        result = run_the_step(inputs=..., outputs=..., settings=...)
        job.extra["n_samples"] = len(result)

The provenance sidecar is written only when the work succeeds; an error a scientist can
act on (:class:`~spectrovision.errors.InputError`, :class:`~spectrovision.errors.ConfigError`)
is also written into the job's log, so the log says why the job failed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError
from .records import write_provenance

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger(__name__)


@dataclass
class ProvenanceRecorder:
    """What :func:`provenance_for` yields: add to ``extra`` (e.g. metrics) while working."""

    output: str
    outputs: list[str]
    inputs: Any
    params: dict[str, Any]
    code: str | None
    started: float
    rule: str | None = None
    wildcards: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    embed_lineage: bool = False

    def write(self) -> Path:
        extra = dict(self.extra, rule=self.rule, wildcards=self.wildcards)
        if self.embed_lineage:
            from .lineage import build_inputs_lineage

            extra["lineage"] = build_inputs_lineage(self.inputs)
        return write_provenance(self.output, self.inputs, self.params, self.code,
                                self.started, extra, outputs=self.outputs)


def named_items(namedlist: Any) -> dict[str, Any]:
    """Named entries of a Snakemake Namedlist (duck-typed), else its positional entries."""
    items = dict(namedlist.items()) if hasattr(namedlist, "items") else {}
    if items:
        return {k: list(v) if isinstance(v, list) else v for k, v in items.items()}
    return {str(i): v for i, v in enumerate(namedlist)}


@contextlib.contextmanager
def provenance_for(job: Any, output: str | None = None, *, skip_params: tuple[str, ...] = (),
                   embed_lineage: bool = False) -> Iterator[ProvenanceRecorder]:
    """Record provenance around a script's work; written only if the work succeeds.

    ``job`` is the ``snakemake`` object of a script (duck-typed: ``input``, ``output``,
    ``params``, ``rule``, ``wildcards``); the sidecar goes beside ``output`` (default: the
    first output). ``params.code`` becomes the code version; ``skip_params`` leaves out
    bulky params (e.g. long sample lists). ``embed_lineage`` stores the whole upstream
    lineage of the inputs (used for the submission).
    """
    outputs = [str(o) for o in job.output]
    params = {k: v for k, v in named_items(job.params).items() if k not in skip_params}
    recorder = ProvenanceRecorder(
        output=str(output or outputs[0]), outputs=outputs, inputs=named_items(job.input),
        params={k: v for k, v in params.items() if k != "code"}, code=params.get("code"),
        started=time.time(), rule=getattr(job, "rule", None),
        wildcards=dict(job.wildcards.items()) if hasattr(job, "wildcards") else {},
        embed_lineage=embed_lineage)
    yield recorder
    recorder.write()


def setup_job_logging(job: Any) -> None:
    """Send the library's log records to the job's first log file (INFO and above)."""
    logs = list(getattr(job, "log", []) or [])
    if logs:
        logging.basicConfig(filename=logs[0], level=logging.INFO, format=LOG_FORMAT,
                            force=True)
    else:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)


@contextlib.contextmanager
def job_context(job: Any, output: str | None = None, *, skip_params: tuple[str, ...] = (),
                embed_lineage: bool = False) -> Iterator[ProvenanceRecorder]:
    """Logging plus provenance for one Snakemake script job (see the module docstring)."""
    setup_job_logging(job)
    try:
        with provenance_for(job, output, skip_params=skip_params,
                            embed_lineage=embed_lineage) as record:
            yield record
    except (InputError, ConfigError) as exc:
        log.error("%s", exc)
        raise
