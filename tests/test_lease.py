"""GPU lease: concurrent jobs never share a device; inherited CUDA_VISIBLE_DEVICES is respected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spectrovision.learn import lease as lease_mod
from spectrovision.learn.lease import lease_device, visible_devices

JOB = """
import json, sys, time
from spectrovision.learn.lease import lease_device
with lease_device(poll_s=0.05) as lease:
    start = time.time()
    time.sleep(float(sys.argv[2]))
    end = time.time()
json.dump({"gpu": lease.physical_id, "start": start, "end": end}, open(sys.argv[1], "w"))
"""


def run_jobs(tmp_path: Path, n_jobs: int, fake_gpus: int, hold_s: float,
             extra_env: dict[str, str] | None = None) -> list[dict]:
    script = tmp_path / "job.py"
    script.write_text(JOB)
    env = {k: v for k, v in os.environ.items()
           if k != "CUDA_VISIBLE_DEVICES" and not k.startswith("SLURM_")}
    env.update({"SPECTROVISION_FAKE_GPUS": str(fake_gpus),
                "SPECTROVISION_GPU_LOCK_DIR": str(tmp_path / "locks"),
                "PYTHONPATH": str(Path(lease_mod.__file__).parents[2]), **(extra_env or {})})
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"job{i}.json"),
                               str(hold_s)], env=env) for i in range(n_jobs)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    return [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(n_jobs)]


def overlapping(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_four_jobs_on_two_gpus_never_share_a_device(tmp_path):
    jobs = run_jobs(tmp_path, n_jobs=4, fake_gpus=2, hold_s=1.5)
    assert {j["gpu"] for j in jobs} == {"0", "1"}
    for i, a in enumerate(jobs):
        for b in jobs[i + 1:]:
            if overlapping(a, b):
                assert a["gpu"] != b["gpu"], (a, b)
    # 4 jobs on 2 devices: some had to wait, so not all four ran at once
    assert sum(overlapping(a, b) for i, a in enumerate(jobs) for b in jobs[i + 1:]) < 6


def test_inherited_cuda_visible_devices_is_respected(tmp_path):
    jobs = run_jobs(tmp_path, n_jobs=2, fake_gpus=4, hold_s=0.3,
                    extra_env={"CUDA_VISIBLE_DEVICES": "3,1"})
    assert {j["gpu"] for j in jobs} <= {"3", "1"}


def test_no_gpu_means_cpu_said_once(monkeypatch, caplog):
    monkeypatch.delenv("SPECTROVISION_FAKE_GPUS", raising=False)
    monkeypatch.setattr(lease_mod, "_cuda_count", lambda: 0)
    assert visible_devices() == ([], False)
    with caplog.at_level("WARNING", logger="spectrovision.learn.lease"):
        with lease_device() as lease:
            assert lease.device == "cpu" and not lease.is_cuda
    assert [r.getMessage() for r in caplog.records] == ["no GPU visible: running on the CPU"]


def test_a_killed_holder_frees_its_device(tmp_path, monkeypatch):
    script = tmp_path / "hold.py"
    script.write_text("from spectrovision.learn.lease import lease_device\nimport time\n"
                      "with lease_device() as l:\n    print(l.physical_id, flush=True)\n"
                      "    time.sleep(60)\n")
    env = {**os.environ, "SPECTROVISION_FAKE_GPUS": "1",
           "SPECTROVISION_GPU_LOCK_DIR": str(tmp_path / "locks"),
           "PYTHONPATH": str(Path(lease_mod.__file__).parents[2])}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    holder = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "0"
    for key in ("SPECTROVISION_FAKE_GPUS", "SPECTROVISION_GPU_LOCK_DIR"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(TimeoutError):
        with lease_device(poll_s=0.05, timeout_s=0.3):
            pass
    holder.kill()
    holder.wait()
    with lease_device(poll_s=0.05, timeout_s=5) as lease:
        assert lease.physical_id == "0" and lease.fake


def test_scheduler_isolated_gpus_are_used_without_waiting(tmp_path):
    """SLURM with cgroup-constrained GPUs: every job sees CUDA_VISIBLE_DEVICES=0, but the
    scheduler gave each its own device: both run at once instead of queueing on gpu0."""
    jobs = run_jobs(tmp_path, n_jobs=2, fake_gpus=1, hold_s=1.0,
                    extra_env={"CUDA_VISIBLE_DEVICES": "0", "SLURM_JOB_GPUS": "3"})
    assert overlapping(jobs[0], jobs[1])
    assert {j["gpu"] for j in jobs} == {"0"}


@pytest.mark.parametrize(("uuids", "concurrent"), [(["GPU-aaa", "GPU-bbb"], True),
                                                   (["GPU-aaa", "GPU-aaa"], False)])
def test_locks_follow_the_device_uuid_not_the_index(tmp_path, uuids, concurrent):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    base.update({"SPECTROVISION_FAKE_GPUS": "1", "CUDA_VISIBLE_DEVICES": "0",
                 "SPECTROVISION_GPU_LOCK_DIR": str(tmp_path / "locks"),
                 "PYTHONPATH": str(Path(lease_mod.__file__).parents[2])})
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"job{i}.json"),
                               "1.0"], env={**base, "SPECTROVISION_FAKE_GPU_UUIDS": uuid})
             for i, uuid in enumerate(uuids)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    jobs = [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(2)]
    assert overlapping(jobs[0], jobs[1]) is concurrent
    assert sorted(f.name for f in (tmp_path / "locks").iterdir()) == sorted(
        {f"gpu-{u}.lock" for u in uuids})


def test_waiting_is_bounded_and_says_what_to_change(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SPECTROVISION_FAKE_GPUS", "1")
    monkeypatch.setenv("SPECTROVISION_GPU_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("SPECTROVISION_GPU_WAIT_S", "0.2")
    for key in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS"):
        monkeypatch.delenv(key, raising=False)
    with lease_device(poll_s=0.05):
        with caplog.at_level("WARNING", logger="spectrovision.learn.lease"):
            with pytest.raises(TimeoutError, match="--resources gpu=N") as err:
                with lease_device(poll_s=0.05):
                    pass
    assert "SPECTROVISION_GPU_WAIT_S" in str(err.value)
    assert any("waiting for one" in r.getMessage() for r in caplog.records)
