"""What a training or prediction job does differently by device, behind one switch.

On every device a job keeps the model and its batches in the channels_last memory format
when the model's settings ask (``channels_last``, the default): PyTorch's CPU convolutions
run faster in it too (the demo's 2-D CNN: 1.13x a training step, 1.16x a train job;
docs/benchmarks.md), and a net without 2-D convolutions computes the same numbers either way.

On CUDA (or anywhere with ``SPECTROVISION_ACCELERATE=1``, which tests and benchmarks use to
run these branches on the CPU) a job also:

- runs forward passes under bf16 autocast (``amp``), as the model's settings ask;
- keeps its whole image stack, labels and metadata on the device (``resident``), moved there
  once, when the stack takes at most :data:`RESIDENT_FRACTION` of the device's free memory;
  batches are then gathered on the device, and the cached-render augmentations and the TTA
  views run there as tensor ops. A stack too large for the device stays in pinned host
  memory, copied batch by batch without blocking.

The random numbers of the augmentations are drawn on the host from the loop's seeded
generator (:func:`~spectrovision.learn.augment.batch_generator`) and copied to the device:
they are a few numbers per sample, and the same seed gives the same draws on every device.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

ACCELERATE_ENV = "SPECTROVISION_ACCELERATE"
RESIDENT_FRACTION = 0.5  # at most this share of the device's free memory for a resident stack


@dataclass(frozen=True)
class DevicePath:
    """The device-dependent branches a job takes (see the module docstring)."""

    device: torch.device
    amp: bool
    channels_last: bool
    resident: bool

    def place(self, tensor: torch.Tensor | None) -> torch.Tensor | None:
        """``tensor`` where batches are taken from: on the device when resident and it fits,
        else in host memory (pinned on CUDA, so copies do not block). Dtype unchanged."""
        if tensor is None or tensor.device == self.device:
            return tensor
        if self.resident and fits_on_device(tensor.element_size() * tensor.nelement(),
                                            self.device):
            return tensor.to(self.device)
        if self.device.type == "cuda" and not tensor.is_pinned():
            return tensor.pin_memory()
        return tensor

    def memory_format(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in channels_last when the path asks for it."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)


def accelerated(device: torch.device | str) -> bool:
    """Whether the accelerator branches apply: on CUDA, or forced by ``SPECTROVISION_ACCELERATE=1``."""
    return torch.device(device).type == "cuda" or os.environ.get(ACCELERATE_ENV, "") == "1"


def device_path(amp: bool, channels_last: bool, device: torch.device | str) -> DevicePath:
    """The branches of a job on ``device`` for a model whose settings ask for ``amp`` (bf16
    autocast) and ``channels_last``: channels_last as asked on every device; autocast and
    the resident stack only on an accelerator (or forced)."""
    dev = torch.device(device)
    on = accelerated(dev)
    return DevicePath(dev, bool(amp) and on, bool(channels_last), on)


def fits_on_device(nbytes: int, device: torch.device | str) -> bool:
    """Whether ``nbytes`` may live on ``device``: always on the CPU; on CUDA at most
    :data:`RESIDENT_FRACTION` of its free memory."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(dev)
    if nbytes > RESIDENT_FRACTION * free:
        log.info("image stack of %.2f GB stays in pinned host memory (%.2f GB free on %s)",
                 nbytes / 1e9, free / 1e9, dev)
        return False
    return True
