"""Probabilities, logits and log loss for multilabel predictions (one sigmoid per label)."""

from __future__ import annotations

import numpy as np


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    x = np.asarray(logits, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def clip_probs(probs: np.ndarray, clip: float) -> np.ndarray:
    """Probabilities clipped to ``[clip, 1 - clip]`` (``0 <= clip < 0.5``)."""
    if not 0.0 <= clip < 0.5:
        raise ValueError(f"clip must lie in [0, 0.5), got {clip}")
    return np.clip(np.asarray(probs, dtype=np.float64), clip, 1.0 - clip)


def logit(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def clipped_logits(logits: np.ndarray, clip: float) -> np.ndarray:
    """Logits of the clipped probabilities: ``logit(clip(sigmoid(x)))``."""
    return logit(clip_probs(sigmoid(logits), clip))


def log_loss_per_label(y_true: np.ndarray, probs: np.ndarray, clip: float = 1e-15) -> np.ndarray:
    """Mean binary cross-entropy of each label (column), shape ``(n_labels,)``."""
    y = np.asarray(y_true, dtype=np.float64)
    p = clip_probs(probs, clip)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ in shape")
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p)).mean(axis=0)


def mean_log_loss(y_true: np.ndarray, probs: np.ndarray, clip: float = 1e-15) -> float:
    """The competition metric: log loss averaged over labels."""
    return float(log_loss_per_label(y_true, probs, clip).mean())
