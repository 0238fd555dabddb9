"""Losses: BCE (optionally label-smoothed or focal) for multilabel, cross-entropy for multiclass.

Targets are float: multilabel 0/1 per label (mixup can make them any value in [0, 1]);
multiclass one row per sample summing to 1 (one-hot or mixed).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .settings import ModelSettings

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def smooth_binary(y: torch.Tensor, eps: float) -> torch.Tensor:
    """Move 0/1 targets toward 0.5 by ``eps``: 1 -> 1 - eps/2, 0 -> eps/2."""
    return y * (1 - eps) + 0.5 * eps


def bce_loss(eps: float = 0.0) -> Loss:
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), smooth_binary(y, eps))
    return loss


def focal_loss(gamma: float, eps: float = 0.0) -> Loss:
    """Binary focal loss: BCE weighted by (1 - p_t)**gamma, averaged over entries."""
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target = smooth_binary(y, eps)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        p = torch.sigmoid(logits)
        p_t = p * target + (1 - p) * (1 - target)
        return ((1 - p_t) ** gamma * bce).mean()
    return loss


def cross_entropy_loss(eps: float = 0.0) -> Loss:
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, label_smoothing=eps)
    return loss


def make_loss(settings: ModelSettings, task: str) -> Loss:
    """The training loss a model's settings name (multiclass always uses cross-entropy)."""
    eps = float(settings.label_smoothing)
    if task == "multiclass":
        return cross_entropy_loss(eps)
    if settings.loss == "focal":
        return focal_loss(float(settings.focal_gamma), eps)
    return bce_loss(eps)


def eval_loss(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """The validation metric: plain log loss (no smoothing, no focusing), averaged."""
    if task == "multiclass":
        return F.cross_entropy(logits.float(), y)
    return F.binary_cross_entropy_with_logits(logits.float(), y)


def sed_frame_loss(loss: Loss, frame_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Loss on the per-time logits of the sed head: their max over time vs. the clip labels."""
    return loss(frame_logits.max(dim=-1).values, y)
