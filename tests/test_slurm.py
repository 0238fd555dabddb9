"""Scale-out: both profiles parse, and the tiny workflow runs through a real SLURM cluster.

The SLURM test needs the single-node cluster of ``scripts/slurm_local.sh`` (partitions
``cpu`` and ``gpu`` as profiles/slurm names them, one fake GPU). It starts the cluster
when it can (root, SLURM installed) and otherwise skips with one line saying why. It runs
the tiny workflow through ``--profile profiles/slurm`` into one results folder and locally
into another, then asserts that every job the dry run plans (except the local ``all``)
was submitted with sbatch and completed in SLURM (the controller's job-completion file),
and that the outputs are equal.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from support import JOB_HEADER, run_snakemake, snakemake_command, snakemake_env

REPO = Path(__file__).resolve().parents[1]
SLURM_LOCAL = REPO / "scripts" / "slurm_local.sh"
SLURM_DIR = Path(os.environ.get("SLURM_LOCAL_DIR", "/var/tmp/spectrovision-slurm"))
JOBCOMP = SLURM_DIR / "log" / "jobcomp.txt"
RUN_TIMEOUT_S = 600
# Local cluster, no slurmdbd: states from squeue, and no 40 s wait before the first check.
SLURM_ARGS = ("--slurm-status-command", "squeue",
              "--slurm-init-seconds-before-status-checks", "2", "--jobs", "4")
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) "
                       r"\(log: .*/slurm_logs/rule_(\w+)/")


def models_exist() -> bool:
    """train.smk and predict.smk hold rules (else only the data stages are compared)."""
    return all(re.search(r"^rule \w+:", (REPO / "workflow" / "rules" / f).read_text(), re.M)
               for f in ("train.smk", "predict.smk"))


def small_config(cfg: dict[str, Any], results: Path) -> dict[str, Any]:
    """The tiny config cut to one model, 2 folds and the prior baseline."""
    cfg = {**cfg, "results": str(results), "baselines": ["prior"]}
    # the test split only: the template's val rows have no test prediction (see the report)
    cfg["data"] = {**cfg["data"], "submission_format": None}
    cfg["folds"] = {**cfg["folds"], "n_folds": 2}
    cfg["workflow"] = {**cfg["workflow"], "train_mem_mb": 1000, "train_threads": 1}
    first = sorted(cfg["models"])[0]
    cfg["models"] = {first: cfg["models"][first]} if models_exist() else {}
    return cfg


def command(workdir: Path, config: Path, *args: str) -> list[str]:
    return snakemake_command(workdir, config=config, cores=None, extra=args)


def snakemake(workdir: Path, config: Path, *args: str, timeout: float = RUN_TIMEOUT_S
              ) -> subprocess.CompletedProcess[str]:
    """Snakemake with ``args`` as given (cores from them or the profile); the caller checks
    the exit status."""
    return run_snakemake(workdir, config=config, cores=None, extra=args, check=False,
                         timeout=timeout, slurm=True)


def target(workdir: Path) -> str:
    """What the two runs build: the submission when models exist (everything but the
    report's figures, which add jobs, not checks), else the data stages."""
    if models_exist():
        return str(workdir / "results" / "submission.csv")
    return "all"


def write_workdir(root: Path, name: str, cfg: dict[str, Any]) -> tuple[Path, Path]:
    """A working directory with its own config; results go to <workdir>/results."""
    workdir = root / name
    workdir.mkdir()
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(small_config(cfg, workdir / "results")))
    return workdir, config


# --- the cluster -------------------------------------------------------------------------
def cluster_problem() -> str | None:
    """None when the local test cluster answers; else why not, after trying to start it."""
    if shutil.which("sinfo") is None:
        return "sinfo not found (as root: scripts/slurm_local.sh install)"
    status = subprocess.run([str(SLURM_LOCAL), "status"], capture_output=True, text=True)
    if status.returncode == 0 and "node idle" in status.stdout:
        return None
    if os.geteuid() != 0:
        return "the local test cluster is not running and starting it needs root " \
               "(sudo scripts/slurm_local.sh start)"
    start = subprocess.run([str(SLURM_LOCAL), "start"], capture_output=True, text=True,
                           timeout=120)
    if start.returncode != 0:
        return f"scripts/slurm_local.sh start failed: {start.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def slurm_cluster() -> Path:
    """The running local cluster; its job-completion file."""
    problem = cluster_problem()
    if problem:
        pytest.skip(f"SLURM: {problem}")
    return JOBCOMP


def completed_jobs(jobcomp: Path) -> dict[str, str]:
    """SLURM job id -> final state, from the controller's job-completion file."""
    text = jobcomp.read_text() if jobcomp.exists() else ""
    return dict(re.findall(r"JobId=(\d+) .*?JobState=(\w+)", text))


def wait_for_jobcomp(jobcomp: Path, job_ids: set[str], timeout: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        states = completed_jobs(jobcomp)
        if job_ids <= set(states) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


# --- comparisons -------------------------------------------------------------------------
def compared_outputs(results: Path) -> list[Path]:
    """Relative paths of the artefacts both runs must agree on."""
    paths = [Path("folds.csv")]
    paths += sorted(p.relative_to(results) for ext in ("npy", "csv")
                    for p in results.glob(f"render/*/stack_*.{ext}"))
    if models_exist():
        paths.append(Path("submission.csv"))
        paths += sorted(p.relative_to(results) for p in results.glob("members/*/*.parquet"))
        paths += sorted(p.relative_to(results)
                        for p in results.glob("predictions/*/fold*/*.parquet"))
    return paths


def assert_same(a: Path, b: Path) -> None:
    if a.suffix == ".npy":
        np.testing.assert_array_equal(np.load(a), np.load(b), err_msg=str(a))
    elif a.suffix == ".parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b), check_exact=True)
    else:
        assert a.read_bytes() == b.read_bytes(), f"{a} differs from {b}"


# --- tests -------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_profile_parses(profile: str, tiny_config: dict[str, Any], tmp_path: Path) -> None:
    """`snakemake -n --profile profiles/<name>` accepts the profile and plans the run."""
    workdir, config = write_workdir(tmp_path, profile, tiny_config)
    proc = snakemake(workdir, config, "-n", "--profile", str(REPO / "profiles" / profile),
                     *(SLURM_ARGS[:2] if profile == "slurm" else ()), timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    planned = JOB_HEADER.findall(proc.stdout)
    assert any(rule == "folds" for _, rule in planned), proc.stdout[-2000:]
    if profile == "slurm":  # every job but `all` would be submitted, none run locally
        assert {rule for local, rule in planned if local} <= {"all"}


@pytest.mark.slurm
def test_slurm_run_equals_local_run(slurm_cluster: Path, tiny_config: dict[str, Any],
                                    tmp_path: Path) -> None:
    local_dir, local_cfg = write_workdir(tmp_path, "local", tiny_config)
    slurm_dir, slurm_cfg = write_workdir(tmp_path, "slurm", tiny_config)
    profile = ("--profile", str(REPO / "profiles" / "slurm"), *SLURM_ARGS)

    plan = snakemake(slurm_dir, slurm_cfg, "-n", *profile, "--", target(slurm_dir),
                     timeout=120)
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    planned = JOB_HEADER.findall(plan.stdout)
    assert {rule for local, rule in planned if local} <= {"all"}, planned
    expected = sorted(rule for _, rule in planned if rule != "all")  # `all` runs nothing
    assert len(expected) >= 6, plan.stdout[-2000:]

    # The local run goes alongside: the SLURM run mostly waits for status polls.
    local = subprocess.Popen(
        [*command(local_dir, local_cfg, "--cores", "2", "--resources", "gpu=1"),
         "--", target(local_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env=snakemake_env())
    start = time.monotonic()
    try:
        run = snakemake(slurm_dir, slurm_cfg, *profile, "--", target(slurm_dir))
    except subprocess.TimeoutExpired as err:
        local.kill()
        subprocess.run(["scancel", "--user", str(os.geteuid())], check=False)
        pytest.fail(f"SLURM run did not finish in {RUN_TIMEOUT_S} s: {str(err.stderr)[-3000:]}")
    elapsed = time.monotonic() - start
    local_log, _ = local.communicate(timeout=RUN_TIMEOUT_S)
    assert local.returncode == 0, local_log[-6000:]
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]

    # (a) every planned job went through SLURM and completed there
    submitted = SUBMITTED.findall(log)
    assert sorted(rule for _, rule in submitted) == expected, log[-4000:]
    job_ids = {job_id for job_id, _ in submitted}
    assert len(job_ids) == len(submitted)
    states = wait_for_jobcomp(slurm_cluster, job_ids)
    assert {job_id: states.get(job_id) for job_id in job_ids} == dict.fromkeys(
        job_ids, "COMPLETED")
    assert not re.search(r"^localrule (?!all:)", log, re.M), "a job ran outside SLURM"

    # (b) the same outputs as the local run
    slurm_results, local_results = slurm_dir / "results", local_dir / "results"
    compared = compared_outputs(local_results)
    assert len(compared) >= 3
    assert compared == compared_outputs(slurm_results)
    for rel in compared:
        assert_same(slurm_results / rel, local_results / rel)
    print(f"SLURM run: {len(submitted)} jobs in {elapsed:.0f} s; {len(compared)} outputs equal")
