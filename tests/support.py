"""Test helpers shared by the workflow tests: run Snakemake on the repository's Snakefile,
read the jobs a dry run plans, and build test configs from a shipped config plus overrides.

Importable from any test module (pyproject's pytest ``pythonpath`` holds ``tests``)::

    from support import derived_config, dry_run_jobs, run_snakemake, write_config

and a render with known axes for the figure tests (:func:`windowed_render`).
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from spectrovision.config.checks import ANALYSIS_STAGES

if TYPE_CHECKING:
    from spectrovision.render.runs import RenderSpec

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
SHIPPED_CONFIG = REPO / "config" / "config.yaml"
BIN = Path(sys.executable).parent  # the venv running the tests: snakemake and python
SNAKEMAKE = BIN / "snakemake"
STUB_BIN = Path(__file__).resolve().parent / "bin"  # stand-ins for tools a test must not wait on
TAIL_CHARS = 5000  # of stdout, of stderr and of each log file in a failure message

# --- test configs --------------------------------------------------------------------------
# Named collections replaced whole when an override gives them: the shipped entries name
# each other (a model or tabular member names a shipped representation), so merging would
# leave shipped members behind in a test that means to list its own.
REPLACED_WHOLE = ("models", "representations", "tabular")


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any],
           replaced: Sequence[str]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
                and key not in replaced:
            out[key] = _merge(out[key], value, ())
        else:
            out[key] = copy.deepcopy(value)
    return out


def derived_config(overrides: Mapping[str, Any] | None = None, *,
                   base: Path = SHIPPED_CONFIG) -> dict[str, Any]:
    """The shipped config (``config/config.yaml`` unless ``base`` names another) with
    ``overrides`` applied: mappings merge key by key at any depth, anything else (lists,
    numbers, None) replaces; ``models``, ``representations`` and ``tabular`` are replaced
    whole when given, and an ``explain``/``embed`` model they no longer hold becomes null
    (the first model by name). Not validated: pass it to ``validate_config`` or write it for
    Snakemake, which validates it."""
    config = _merge(yaml.safe_load(base.read_text()), overrides or {}, REPLACED_WHOLE)
    for stage in ANALYSIS_STAGES:  # a shipped analysis model that the new models lack
        block = config.get(stage)
        if isinstance(block, dict) and block.get("model") not in (None, *config["models"]):
            block["model"] = None
    return config


TINY_REPRESENTATION = {"n_mass": 64, "n_x": 32, "background_subtraction": True,
                       "derivatized_channel": True}
TINY_MODELS = {
    "tiny_pool": {"representation": "tiny", "backbone": "resnet10t", "head": "pool"},
    "tiny_timeavg": {"representation": "tiny", "backbone": "resnet10t", "head": "time_avg"},
}


def tiny_workflow_config(data_dir: Path | str, results: Path | str) -> dict[str, Any]:
    """The shipped config cut to CI size over a tiny Mars-2 data set: one 64x32
    representation, 2 shards, 2 folds, two resnet10t models (pool and time_avg heads),
    1 epoch, no mixup or dropout, no tabular member, three baselines (the priors and
    benchmark_lr) outside the ensemble."""
    return derived_config({
        "results": str(results),
        "seed": 7,
        "data": {"layout": "mars2", "dir": str(data_dir)},
        "workflow": {"shards": 2, "train_threads": 1},
        "representations": {"tiny": dict(TINY_REPRESENTATION)},
        "folds": {"n_folds": 2, "seed": 7, "val_in_folds": True},
        "model_defaults": {"epochs": 1, "batch_size": 8, "lr": 3.0e-3, "warmup_epochs": 0,
                           "time_resize": [24, 40], "amp": False, "channels_last": False,
                           "mixup_p": 0.0, "drop_rate": 0.0},
        "models": copy.deepcopy(TINY_MODELS),
        "predict": {"tta_n_widths": 2, "tta_step": 8, "batch_size": 16},
        "ensemble": {"include_baselines": False},
        "baselines": ["prior", "conditional_prior", "benchmark_lr"],
        "baseline_settings": {"benchmark_lr": {"time_bins": 4}},
        "tabular": {},
    })


def data_block(**keys: Any) -> dict[str, Any]:
    """A validated ``data:`` block with ``keys`` set (the rest: the schema's defaults)."""
    from spectrovision.config.schema import validate_config

    return validate_config({"data": keys})["data"]


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    """``config`` as YAML at ``path``; returns ``path``."""
    path.write_text(yaml.safe_dump(dict(config)))
    return path


def unlabelled_batch(data_dir: Path, keep_label_files: bool = False) -> Path:
    """Turn the data set in ``data_dir`` (changed in place: pass a copy) into a new batch
    for an apply run: every split ``test``, the label files deleted unless
    ``keep_label_files``. Returns ``data_dir``."""
    import pandas as pd

    meta = pd.read_csv(data_dir / "metadata.csv", dtype=str)
    meta["split"] = "test"
    meta.to_csv(data_dir / "metadata.csv", index=False)
    if not keep_label_files:
        for path in data_dir.glob("*_labels.csv"):
            path.unlink()
    return data_dir


# --- running Snakemake ---------------------------------------------------------------------
def snakemake_command(workdir: Path, *targets: str, config: Path | str = "config.yaml",
                      cores: int | None = 2, extra: Sequence[str] = (),
                      snakefile: Path = SNAKEFILE) -> list[str]:
    """The command line: ``extra`` options, then ``-- targets`` (none: the default target).
    ``config`` is relative to ``workdir`` unless absolute; ``cores=None`` leaves
    ``--cores`` to a profile."""
    cmd = [str(SNAKEMAKE), "-s", str(snakefile), "--configfile", str(config),
           "--directory", str(workdir)]
    if cores is not None:
        cmd += ["--cores", str(cores)]
    cmd += list(extra)
    if targets:
        cmd += ["--", *targets]
    return cmd


def snakemake_env(env: Mapping[str, str] | None = None, *, slurm: bool = False
                  ) -> dict[str, str]:
    """This process's environment (PYTHONPATH included) with the venv's bin first on PATH,
    so that jobs run the same python, plus ``env``. Unless ``slurm``, :data:`STUB_BIN` goes
    first: its ``scontrol`` answers at once where the real one would wait ~9 s for a SLURM
    controller at every Snakemake start (tests/bin/scontrol says why)."""
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    if not slurm:
        path = f"{STUB_BIN}{os.pathsep}{path}"
    return {**os.environ, "PATH": path, **(env or {})}


ERROR_BLOCK = re.compile(r"^Error in rule \w+:\n((?:[ \t]+.*\n?)*)", re.M)
LOG_LINE = re.compile(r"^\s+log: (.+?)(?: \(check log file\(s\) for error details\))?\s*$",
                      re.M)


def failed_logs(text: str, workdir: Path) -> list[Path]:
    """The log files that Snakemake's ``Error in rule`` blocks name, relative to workdir."""
    logs: list[Path] = []
    for block in ERROR_BLOCK.findall(text):
        for line in LOG_LINE.findall(block):
            logs += [workdir / part.strip() for part in line.split(", ") if part.strip()]
    return list(dict.fromkeys(logs))


def failure_report(proc: subprocess.CompletedProcess[str], workdir: Path) -> str:
    """What a failing run said: the command, the tails of stdout and stderr, and the tail of
    each log file that a failed job names."""
    parts = [f"snakemake exited with {proc.returncode}: {' '.join(map(str, proc.args))}",
             f"--- stdout (tail) ---\n{proc.stdout[-TAIL_CHARS:]}",
             f"--- stderr (tail) ---\n{proc.stderr[-TAIL_CHARS:]}"]
    for log in failed_logs(proc.stdout + proc.stderr, workdir):
        text = log.read_text(errors="replace") if log.is_file() else "(missing)"
        parts.append(f"--- {log} (tail) ---\n{text[-TAIL_CHARS:]}")
    return "\n".join(parts)


def run_snakemake(workdir: Path, *targets: str, config: Path | str = "config.yaml",
                  cores: int | None = 2, extra: Sequence[str] = (),
                  env: Mapping[str, str] | None = None, check: bool = True,
                  timeout: float | None = None, snakefile: Path = SNAKEFILE,
                  slurm: bool = False) -> subprocess.CompletedProcess[str]:
    """Run Snakemake in ``workdir`` (see :func:`snakemake_command`) and return the finished
    process. ``check``: a non-zero exit raises AssertionError with :func:`failure_report`.
    ``timeout`` (seconds) raises subprocess.TimeoutExpired. ``slurm``: the real SLURM tools
    on PATH (:func:`snakemake_env`). Snakemake runs in its own process group, killed with its
    jobs when the wait ends early (a timeout, pytest-timeout, Ctrl-C)."""
    cmd = snakemake_command(workdir, *targets, config=config, cores=cores, extra=extra,
                            snakefile=snakefile)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=workdir, env=snakemake_env(env, slurm=slurm),
                          start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except BaseException:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.communicate()
            raise
    proc = subprocess.CompletedProcess(cmd, process.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        raise AssertionError(failure_report(proc, workdir))
    return proc


# --- dry runs ------------------------------------------------------------------------------
JOB_HEADER = re.compile(r"^(local)?rule (\w+):\s*$", re.M)
WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")


def parse_dry_run(text: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a ``snakemake --dry-run`` printout plans."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        if header := JOB_HEADER.match(line):
            jobs.append((header.group(2), {}))
        elif jobs and (wild := WILDCARDS.match(line)):
            jobs[-1][1].update(dict(part.split("=", 1) for part in wild.group(1).split(", ")))
    return jobs


def dry_run(workdir: Path, *targets: str, extra: Sequence[str] = (),
            **kwargs: Any) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job ``snakemake --dry-run`` plans for ``targets``; the
    keywords are those of :func:`run_snakemake` (a failing dry run raises)."""
    proc = run_snakemake(workdir, *targets, extra=("--dry-run", *extra), **kwargs)
    return parse_dry_run(proc.stdout + proc.stderr)


def dry_run_jobs(workdir: Path, *targets: str, **kwargs: Any) -> Counter[str]:
    """How many jobs a dry run plans per rule (see :func:`dry_run`)."""
    return Counter(rule for rule, _ in dry_run(workdir, *targets, **kwargs))


# --- renders ------------------------------------------------------------------------------
def render_spec(**settings: Any) -> RenderSpec:
    """The RenderSpec of a run representation with ``settings``, the schema's defaults
    filled in (as a validated config has them)."""
    from spectrovision.config.schema import representation_block
    from spectrovision.data.layouts import get_layout
    from spectrovision.render.runs import RenderSpec

    block = representation_block(settings)
    return RenderSpec.from_config(get_layout("mars2").representation_settings(block))


def image_spec(image_size: Any = None, **settings: Any) -> Any:
    """The ImageSpec of an image representation with ``image_size`` (height, width) and
    ``settings``, the schema's defaults filled in."""
    from spectrovision.config.schema import representation_block
    from spectrovision.render.images import ImageSpec

    if image_size is not None:
        settings["image_size"] = list(image_size)
    return ImageSpec.from_config(representation_block(settings))


def windowed_render() -> tuple[RenderSpec, np.ndarray]:
    """A temp run rendered on m/z 10-20 and 0-1100 degC in 10 degC steps: a peak at m/z 15
    and 505 degC (column 50) over a faint floor on every row."""
    from spectrovision.render.runs import RenderSpec, render_sample

    spec = render_spec(x_axis="temp", mass_window=[10, 20], x_window=[0, 1100], x_step=10,
                      log="none")
    temp = np.repeat(np.arange(5.0, 1100, 10), 11)
    mass = np.tile(np.arange(10, 21), 110)
    intensity = np.where((mass == 15) & (temp == 505), 1000.0, 1.0)
    run = {"temp": temp, "mass": mass, "intensity": intensity}
    return spec, render_sample(run, spec)[None]
