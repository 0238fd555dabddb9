"""Combining members: the (weighted) mean of their clipped logits, never of probabilities.

Multiclass members hold log-probabilities; they combine as the mean of clipped
log-probabilities, renormalised. Deterministic: same inputs, same outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metrics import clipped_scores


def combine_logits(member_logits: Sequence[np.ndarray], clip: float,
                   weights: np.ndarray | None = None, task: str = "multilabel") -> np.ndarray:
    """Weighted mean of the members' clipped logits; ``weights`` is (n_members, n_labels),
    non-negative, normalised per label here (``None`` = equal weights). Multiclass: the
    weighted mean of clipped log-probabilities, renormalised to log-probabilities."""
    stacked = np.stack([clipped_scores(x, clip, task) for x in member_logits])
    if task == "multiclass":
        mean = (stacked.mean(axis=0) if weights is None else
                np.einsum("mnl,ml->nl", stacked, normalise_weights(np.asarray(weights, float))))
        return mean - np.log(np.exp(mean).sum(axis=1, keepdims=True))
    if weights is None:
        return stacked.mean(axis=0)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (stacked.shape[0], stacked.shape[2]) or (w < 0).any():
        raise ValueError(f"weights must be non-negative with shape "
                         f"{(stacked.shape[0], stacked.shape[2])}, got {w.shape}")
    return np.einsum("mnl,ml->nl", stacked, normalise_weights(w))


def normalise_weights(weights: np.ndarray) -> np.ndarray:
    """Per-label weights summing to one; an all-zero label falls back to equal weights."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=0, keepdims=True)
    equal = np.full_like(w, 1.0 / w.shape[0])
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), equal)
