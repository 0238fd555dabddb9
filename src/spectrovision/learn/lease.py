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
LOCK_DIR_ENV = "SPECTROVISION_GPU_LOCK_DIR"


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
    set above the real count) it waits, logging once, until one is free.
    """
    ids, fake = visible_devices() if prefer_gpu else ([], False)
    if not ids:
        log.warning("no GPU visible: running on the CPU")
        yield Lease("cpu", None)
        return
    folder = lock_dir()
    start = time.monotonic()
    said = False
    while True:
        for index, physical in enumerate(ids):
            fd = _try_lock(folder / f"gpu{physical}.lock")
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
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"no free GPU among {ids} after {timeout_s:.0f} s")
        if not said:
            log.warning("all %d visible GPUs are leased; waiting for one", len(ids))
            said = True
        time.sleep(poll_s)
