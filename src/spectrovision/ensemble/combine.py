"""Combining members: the (weighted) mean of their clipped logits, never of probabilities.

Multiclass members hold log-probabilities; they combine as the mean of clipped
log-probabilities, renormalised. With a ``prior`` (``ensemble.shrink``) the weights are used
as they are, each label's summing to at most one, and the rest of the weight goes to the
prior's logit (multiclass: its log-probabilities): a learned shrink toward the prior.
Deterministic: same inputs, same outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metrics import clipped_scores


def combine_logits(member_logits: Sequence[np.ndarray], clip: float,
                   weights: np.ndarray | None = None, task: str = "multilabel",
                   prior: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean of the members' clipped logits; ``weights`` is (n_members, n_labels),
    non-negative, normalised per label here (``None`` = equal weights). Multiclass: the
    weighted mean of clipped log-probabilities, renormalised to log-probabilities.
    ``prior`` (n_labels,) given: ``sum_m w_m x_m + (1 - sum_m w_m) prior`` with the weights
    as given (each label's sum at most one; ``None`` = equal weights summing to one)."""
    stacked = np.stack([clipped_scores(x, clip, task) for x in member_logits])
    if prior is not None:
        return shrunk_mean(stacked, weights, np.asarray(prior, dtype=np.float64), task)
    if task == "multiclass":
        mean = (stacked.mean(axis=0) if weights is None else
                np.einsum("mnl,ml->nl", stacked, normalise_weights(np.asarray(weights, float))))
        return renormalised(mean)
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


def shrunk_mean(stacked: np.ndarray, weights: np.ndarray | None, prior: np.ndarray,
                task: str = "multilabel") -> np.ndarray:
    """``sum_m w_m x_m + (1 - sum_m w_m) prior`` of (n_members, n, n_labels) clipped scores
    with (n_members, n_labels) weights in [0, 1] summing to at most one per label (``None`` =
    equal weights summing to one); multiclass renormalised to log-probabilities."""
    n_members, _, n_labels = stacked.shape
    w = (np.full((n_members, n_labels), 1.0 / n_members) if weights is None
         else np.asarray(weights, dtype=np.float64))
    if (w.shape != (n_members, n_labels) or (w < 0).any()
            or (w.sum(axis=0) > 1.0 + 1e-9).any()):
        raise ValueError(f"shrink weights must be non-negative with shape {(n_members, n_labels)} "
                         f"and sum to at most one per label, got {w.shape}")
    if prior.shape != (n_labels,):
        raise ValueError(f"prior must have shape {(n_labels,)}, got {prior.shape}")
    out = np.einsum("mnl,ml->nl", stacked, w) + (1.0 - w.sum(axis=0)) * prior
    return renormalised(out) if task == "multiclass" else out


def renormalised(log_scores: np.ndarray) -> np.ndarray:
    """Rows of multiclass log-scores shifted to log-probabilities (each row's exp sums to 1)."""
    return log_scores - np.log(np.exp(log_scores).sum(axis=1, keepdims=True))
