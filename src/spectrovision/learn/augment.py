"""Training-time augmentations and the test-time time widths, on ``(B, C, mass, time)`` batches.

Every random choice draws from an explicit ``torch.Generator`` so a seeded run repeats
exactly (also after a resume, which restores the generator's state).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

MIN_WIDTH = 8


def resize_time(batch: torch.Tensor, width: int) -> torch.Tensor:
    """Resize the time (last) axis to ``width`` columns, mass axis unchanged (bilinear)."""
    if batch.shape[-1] == width:
        return batch
    return F.interpolate(batch, size=(batch.shape[-2], int(width)), mode="bilinear",
                         align_corners=False)


def random_time_width(lo: int, hi: int, generator: torch.Generator) -> int:
    """A width drawn uniformly from [lo, hi] (one per batch: batch-wise resize)."""
    return int(torch.randint(int(lo), int(hi) + 1, (1,), generator=generator).item())


def training_width(time_resize: Sequence[int] | None, n_x: int) -> int:
    """The width the model is trained around: centre of the resize range, else the render's."""
    if not time_resize:
        return int(n_x)
    lo, hi = time_resize
    return int(round((lo + hi) / 2))


def tta_time_sizes(train_width: int, n_widths: int, step: int) -> list[int]:
    """``n_widths`` time widths ``step`` apart, centred on ``train_width`` (>= 8 each)."""
    centre = (n_widths - 1) / 2
    sizes = [int(round(train_width + (i - centre) * step)) for i in range(n_widths)]
    if min(sizes) < MIN_WIDTH:
        raise ValueError(f"TTA widths {sizes} go below {MIN_WIDTH} columns; lower "
                         "predict.tta_step or predict.tta_n_widths")
    return sizes


def time_warp(batch: torch.Tensor, alpha_range: Sequence[float],
              generator: torch.Generator) -> torch.Tensor:
    """Warp each sample's time axis t -> t**alpha (t scaled to [0, 1]), alpha log-uniform
    in ``alpha_range`` per sample; linear interpolation between columns."""
    lo, hi = (float(a) for a in alpha_range)
    n, _, _, width = batch.shape
    u = torch.rand(n, generator=generator)
    alpha = torch.exp(torch.log(torch.tensor(lo)) + u * (torch.log(torch.tensor(hi))
                                                        - torch.log(torch.tensor(lo))))
    t = (torch.arange(width, dtype=torch.float32) + 0.5) / width  # column centres in (0,1)
    source = t.unsqueeze(0) ** alpha.unsqueeze(1) * width - 0.5  # (n, width)
    source = source.clamp(0, width - 1)
    left = source.floor().long()
    right = (left + 1).clamp(max=width - 1)
    frac = (source - left).to(batch.device, batch.dtype)
    left, right = left.to(batch.device), right.to(batch.device)

    def take(index: torch.Tensor) -> torch.Tensor:
        return torch.gather(batch, 3, index.view(n, 1, 1, width).expand_as(batch))

    w = frac.view(n, 1, 1, width)
    return take(left) * (1 - w) + take(right) * w


def mixup(x: torch.Tensor, y: torch.Tensor, p: float, generator: torch.Generator,
          multiclass: bool = False) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """With probability ``p`` mix the batch with a shuffled copy of itself, fraction
    U(0.4, 0.6); labels become the elementwise max (multilabel) or the same mixture of
    class distributions (multiclass). Returns ``(x, y, mixed)``."""
    x, y, _, mixed = mixup_with_meta(x, y, None, p, generator, multiclass)
    return x, y, mixed


def mixup_with_meta(x: torch.Tensor, y: torch.Tensor, meta: torch.Tensor | None, p: float,
                    generator: torch.Generator, multiclass: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, bool]:
    """:func:`mixup` that mixes each sample's metadata vector (``meta``, or None) with the
    same partner and fraction as its image. Returns ``(x, y, meta, mixed)``."""
    if p <= 0 or float(torch.rand(1, generator=generator)) >= p:
        return x, y, meta, False
    lam = 0.4 + 0.2 * float(torch.rand(1, generator=generator))
    perm = torch.randperm(x.shape[0], generator=generator)
    x = lam * x + (1 - lam) * x[perm]
    y = lam * y + (1 - lam) * y[perm] if multiclass else torch.maximum(y, y[perm])
    if meta is not None:
        meta = lam * meta + (1 - lam) * meta[perm]
    return x, y, meta, True
