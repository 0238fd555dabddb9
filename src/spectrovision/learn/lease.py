"""GPU lease: each concurrent local job gets its own device; no GPU means the CPU, said once.

Snakemake's ``--resources gpu=N`` caps how many GPU jobs run at once but does not say
*which* device a job should use. :func:`lease_device` takes an exclusive ``flock`` on one
lock file per visible device (first free one wins) and holds it for the life of the job;
the kernel drops the lock when the process ends, also on SIGKILL, so nothing goes stale.

Devices considered are those in an inherited ``CUDA_VISIBLE_DEVICES`` (as SLURM sets it,
or as a user restricts it), else all devices torch sees. The leased device is used as
``cuda:<index within the visible list>`` (so it works whether or not CUDA is already
initialised in the process). ``SPECTROVISION_FAKE_GPUS=N`` pretends N devices exist (tests on
the CPU): the lease logic runs, the model still runs on the CPU.

Under a scheduler that isolates devices (SLURM with cgroup-constrained GPUs) every job sees
``CUDA_VISIBLE_DEVICES=0``, so an index would make two jobs on one node wait on the same
lock file. Two rules avoid that:

- when SLURM says which node GPUs the job or step holds (``SLURM_STEP_GPUS`` or
  ``SLURM_JOB_GPUS``), the scheduler has already given the job its own devices: no lock is
  taken, the job uses its first visible device and says so;
- otherwise each lock file is named after the device's UUID when the driver reports one
  (``SPECTROVISION_FAKE_GPU_UUIDS`` in tests), so the lock follows the physical device,
  not its index in one job's view.

Waiting for a free device is bounded: a warning when the wait starts and every
:data:`WARN_EVERY_S` seconds, then a :class:`TimeoutError` that says what to change after
``SPECTROVISION_GPU_WAIT_S`` seconds (default :data:`DEFAULT_WAIT_S`).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FAKE_ENV = "SPECTROVISION_FAKE_GPUS"
FAKE_UUIDS_ENV = "SPECTROVISION_FAKE_GPU_UUIDS"
LOCK_DIR_ENV = "SPECTROVISION_GPU_LOCK_DIR"
WAIT_ENV = "SPECTROVISION_GPU_WAIT_S"
SCHEDULER_GPU_ENVS = ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS")
DEFAULT_WAIT_S = 6 * 3600.0
WARN_EVERY_S = 600.0


@dataclass(frozen=True)
class Lease:
    device: str          # torch device string: "cpu" or "cuda:<i>"
    physical_id: str | None  # the device id as CUDA_VISIBLE_DEVICES names it
    fake: bool = False

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


def visible_devices() -> tuple[list[str], bool]:
    """Ids of the devices a job may use, and whether they are fake (test mode).

    An inherited ``CUDA_VISIBLE_DEVICES`` (SLURM's allocation, or a user's choice) names
    them; otherwise every device the driver (or ``SPECTROVISION_FAKE_GPUS``) reports.
    """
    fake = os.environ.get(FAKE_ENV)
    count = int(fake) if fake else _cuda_count()
    if count <= 0:
        return [], bool(fake)
    inherited = os.environ.get("CUDA_VISIBLE_DEVICES")
    if inherited is not None:
        ids = [d.strip() for d in inherited.split(",") if d.strip() and d.strip() != "-1"]
        return ids[:count], bool(fake)
    return [str(i) for i in range(count)], bool(fake)


def _cuda_count() -> int:
    try:
        import torch
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver is "no GPU", said once by the caller
        return 0


def scheduler_gpus() -> tuple[str, str] | None:
    """(variable, value) when the scheduler assigned this job its own GPUs, else None."""
    for name in SCHEDULER_GPU_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return None


def device_uuids(count: int, fake: bool) -> list[str | None]:
    """The UUID of each visible device (index order), None where none is known."""
    if fake:
        given = [u.strip() for u in os.environ.get(FAKE_UUIDS_ENV, "").split(",") if u.strip()]
        return [given[i] if i < len(given) else None for i in range(count)]
    try:
        import torch

        return [str(getattr(torch.cuda.get_device_properties(i), "uuid", "")) or None
                for i in range(count)]
    except Exception:  # no UUID from this driver or torch: fall back to the index
        return [None] * count


def lock_name(physical: str, uuid: str | None) -> str:
    """The lock file of one device: its UUID when known, else its visible id."""
    if uuid:
        return "gpu-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in uuid) + ".lock"
    return f"gpu{physical}.lock"


def wait_limit() -> float:
    """Seconds to wait for a free GPU (``SPECTROVISION_GPU_WAIT_S``, default 6 h)."""
    value = os.environ.get(WAIT_ENV)
    return float(value) if value else DEFAULT_WAIT_S


def lock_dir() -> Path:
    default = Path(tempfile.gettempdir()) / f"spectrovision-gpu-locks-{os.getuid()}"
    path = Path(os.environ.get(LOCK_DIR_ENV, default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextmanager
def lease_device(prefer_gpu: bool = True, poll_s: float = 2.0,
                 timeout_s: float | None = None) -> Iterator[Lease]:
    """Hold one device for the ``with`` block: a free GPU when any is visible, else the CPU.

    When every visible GPU is held (more GPU jobs than devices, e.g. ``--resources gpu``
    set above the real count) it waits, warning at the start and every 10 minutes, and
    gives up after ``timeout_s`` (default: :func:`wait_limit`) with a TimeoutError.
    """
    ids, fake = visible_devices() if prefer_gpu else ([], False)
    if not ids:
        log.warning("no GPU visible: running on the CPU")
        yield Lease("cpu", None)
        return
    assigned = scheduler_gpus()
    if assigned is not None:
        name, value = assigned
        log.info("GPU %s isolated by the scheduler (%s=%s): using %s without a lease",
                 ids[0], name, value, "the CPU [fake device]" if fake else "cuda:0")
        yield Lease("cpu" if fake else "cuda:0", ids[0], fake)
        return
    limit = wait_limit() if timeout_s is None else timeout_s
    uuids = device_uuids(len(ids), fake)
    folder = lock_dir()
    start = time.monotonic()
    warned_at: float | None = None
    while True:
        for index, (physical, uuid) in enumerate(zip(ids, uuids)):
            fd = _try_lock(folder / lock_name(physical, uuid))
            if fd is None:
                continue
            try:
                lease = Lease("cpu" if fake else f"cuda:{index}", physical, fake)
                log.info("leased GPU %s (%s)%s", physical, lease.device,
                         " [fake device: computing on the CPU]" if fake else "")
                yield lease
            finally:
                os.close(fd)
                log.info("released GPU %s", physical)
            return
        waited = time.monotonic() - start
        if waited > limit:
            raise TimeoutError(
                f"no free GPU among {ids} after {waited:.0f} s (lock files in {folder}). "
                "Fix: run at most as many GPU jobs as there are GPUs (--resources gpu=N), "
                f"or raise {WAIT_ENV}")
        if warned_at is None or waited - warned_at >= WARN_EVERY_S:
            log.warning("all %d visible GPUs are leased; waiting for one (%.0f s so far, "
                        "giving up after %.0f s)", len(ids), waited, limit)
            warned_at = waited
        time.sleep(poll_s)
