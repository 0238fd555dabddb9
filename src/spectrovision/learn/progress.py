"""Training progress: the record the training loop writes after every epoch
(:func:`progress_record`, ``progress.json``) and its reader, where a long run stands (what
``spectrovision status`` prints): per model x fold, done / running / interrupted / waiting,
and an estimate of the time left from measured epoch times.

Reads only the results folder (so it works the same for a local run and for SLURM jobs
writing to shared storage): a finished job has ``models/{model}/fold{k}/metrics.json``;
a started one has ``checkpoints/{model}/fold{k}/progress.json``, which training rewrites
after every epoch (epoch k of n, seconds per epoch). A started job whose progress file
has not changed for longer than :data:`STALE_EPOCHS` epoch times (and at least
:data:`STALE_MIN_S` seconds) is reported as interrupted: re-running resumes it from its
checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROGRESS_FILE = "progress.json"
STALE_EPOCHS = 3.0
STALE_MIN_S = 120.0


@dataclass(frozen=True)
class JobStatus:
    """One train job's state."""

    model: str
    fold: int
    state: str  # done | running | interrupted | waiting
    epoch: int  # epochs finished
    epochs: int
    epoch_seconds: float | None  # mean measured seconds per epoch (None: nothing measured)
    seconds_left: float | None


def progress_path(results: str | Path, model: str, fold: int) -> Path:
    return Path(results) / "checkpoints" / model / f"fold{fold}" / PROGRESS_FILE


def progress_record(epoch: int, epochs: int, epoch_seconds: Sequence[float]) -> dict[str, Any]:
    """What training writes to ``progress.json`` after each epoch."""
    return {"epoch": int(epoch), "epochs": int(epochs),
            "epoch_seconds": [round(float(s), 3) for s in epoch_seconds],
            "updated": time.time()}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def job_status(results: str | Path, model: str, fold: int, epochs: int,
               now: float | None = None) -> JobStatus:
    """The state of one model x fold from the files under ``results``."""
    now = time.time() if now is None else now
    metrics = _read_json(Path(results) / "models" / model / f"fold{fold}" / "metrics.json")
    if metrics is not None:
        done = int(metrics.get("epochs", epochs))
        seconds = metrics.get("seconds")
        per_epoch = float(seconds) / done if seconds is not None and done else None
        return JobStatus(model, fold, "done", done, done, per_epoch, 0.0)
    progress = _read_json(progress_path(results, model, fold))
    if progress is None:
        return JobStatus(model, fold, "waiting", 0, epochs, None, None)
    times = [float(s) for s in progress.get("epoch_seconds", [])]
    per_epoch = sum(times) / len(times) if times else None
    finished, total = int(progress["epoch"]), int(progress.get("epochs", epochs))
    left = per_epoch * max(total - finished, 0) if per_epoch is not None else None
    quiet = now - float(progress.get("updated", now))
    stale = max(STALE_MIN_S, STALE_EPOCHS * (per_epoch or 0.0))
    state = "interrupted" if quiet > stale else "running"
    return JobStatus(model, fold, state, finished, total, per_epoch, left)


def run_status(results: str | Path, models: Mapping[str, int], n_folds: int,
               now: float | None = None) -> list[JobStatus]:
    """Every train job's state; ``models`` maps a model name to its epochs."""
    return [job_status(results, model, fold, epochs, now)
            for model, epochs in sorted(models.items()) for fold in range(n_folds)]


def estimate_waiting(jobs: Sequence[JobStatus]) -> list[JobStatus]:
    """Fill the time left of waiting jobs from the measured epoch time of the same model
    (else of any model, scaled by epochs)."""
    by_model: dict[str, list[float]] = {}
    for job in jobs:
        if job.epoch_seconds is not None:
            by_model.setdefault(job.model, []).append(job.epoch_seconds)
    everything = [s for seconds in by_model.values() for s in seconds]
    out = []
    for job in jobs:
        if job.state == "waiting":
            known = by_model.get(job.model) or everything
            if known:
                per_epoch = sum(known) / len(known)
                job = JobStatus(job.model, job.fold, job.state, 0, job.epochs, per_epoch,
                                per_epoch * job.epochs)
        out.append(job)
    return out


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def format_status(jobs: Sequence[JobStatus]) -> str:
    """A table of the jobs and a closing line with counts and the time left."""
    lines = [f"{'model':<24} {'fold':>4}  {'state':<11} {'epoch':>9}  {'s/epoch':>8}  left"]
    for job in jobs:
        per_epoch = f"{job.epoch_seconds:.1f}" if job.epoch_seconds is not None else "-"
        lines.append(f"{job.model:<24} {job.fold:>4}  {job.state:<11} "
                     f"{job.epoch:>4}/{job.epochs:<4}  {per_epoch:>8}  "
                     f"{format_duration(job.seconds_left)}")
    counts = {s: sum(j.state == s for j in jobs)
              for s in ("done", "running", "interrupted", "waiting")}
    pending = [j.seconds_left for j in jobs if j.state != "done"]
    known = [s for s in pending if s is not None]
    parallel = max(counts["running"], 1)
    total = sum(known) / parallel if known else None
    unknown = len(pending) - len(known)
    tail = f" (+{unknown} jobs with no measured epoch yet)" if unknown else ""
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items())
                 + f"; about {format_duration(total) if pending else '0m00s'} left at "
                 f"{parallel} job(s) at a time{tail}")
    return "\n".join(lines)


def status_from_config(config_path: str | Path, directory: str | Path = ".",
                       now: float | None = None) -> tuple[Path, list[JobStatus]]:
    """Read a config (validated) and report the train jobs of its results folder
    (a relative ``results:`` is taken from ``directory``, where Snakemake runs)."""
    import yaml

    from ..config.schema import resolve_model, validate_config

    with open(config_path) as fh:
        cfg = validate_config(yaml.safe_load(fh) or {})
    models = {name: int(resolve_model(cfg, name)["epochs"]) for name in cfg["models"]}
    results = Path(directory) / cfg["results"]
    jobs = estimate_waiting(run_status(results, models, int(cfg["folds"]["n_folds"]), now))
    return results, jobs
