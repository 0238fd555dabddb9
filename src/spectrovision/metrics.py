"""Probabilities, logits and log loss: multilabel (one sigmoid per label) and multiclass
(one softmax over the classes)."""

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


# --- multiclass (one softmax over the classes) -----------------------------------------------
# Member tables of task multiclass hold class scores whose softmax is the class
# distribution; gathered and ensembled tables hold log-probabilities (a special case).
TASKS = ("multilabel", "multiclass")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    x = np.asarray(logits, dtype=np.float64)
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def clip_class_probs(probs: np.ndarray, clip: float) -> np.ndarray:
    """Class probabilities clipped to ``[clip, 1 - clip]``, then renormalised per row."""
    p = clip_probs(probs, clip)
    return p / p.sum(axis=1, keepdims=True)


def to_probs(scores: np.ndarray, task: str = "multilabel") -> np.ndarray:
    """Probabilities of member scores: sigmoid per label, or softmax over the classes."""
    return softmax(scores) if task == "multiclass" else sigmoid(scores)


def clipped_probs(scores: np.ndarray, clip: float, task: str = "multilabel") -> np.ndarray:
    """Clipped probabilities (renormalised per row for multiclass)."""
    if task == "multiclass":
        return clip_class_probs(softmax(scores), clip)
    return clip_probs(sigmoid(scores), clip)


def scores_of_probs(probs: np.ndarray, task: str = "multilabel") -> np.ndarray:
    """Member scores of probabilities: logits (multilabel) or log-probabilities (multiclass)."""
    p = np.asarray(probs, dtype=np.float64)
    return np.log(p) if task == "multiclass" else logit(p)


def clipped_scores(scores: np.ndarray, clip: float, task: str = "multilabel") -> np.ndarray:
    """Scores of the clipped probabilities: ``logit(clip(sigmoid(x)))`` or
    ``log(renormalised clip(softmax(x)))``."""
    if task == "multiclass":
        return np.log(clipped_probs(scores, clip, task))
    return clipped_logits(scores, clip)


def multiclass_log_loss(y_true: np.ndarray, probs: np.ndarray, clip: float = 1e-15) -> float:
    """Mean ``-log p(true class)`` (one-hot or soft targets, probabilities clipped)."""
    y = np.asarray(y_true, dtype=np.float64)
    p = clip_probs(probs, clip)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ in shape")
    return float(-(y * np.log(p)).sum(axis=1).mean())


def log_loss_per_class(y_true: np.ndarray, probs: np.ndarray, clip: float = 1e-15) -> np.ndarray:
    """Per class, the mean ``-log p(class)`` over the samples of that class (NaN if none)."""
    y = np.asarray(y_true, dtype=np.float64)
    nll = -np.log(clip_probs(probs, clip))
    counts = y.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, (y * nll).sum(axis=0) / counts, np.nan)


def accuracy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Share of samples whose most probable class is the true (largest-target) class."""
    y = np.asarray(y_true)
    return float((np.argmax(probs, axis=1) == np.argmax(y, axis=1)).mean()) if len(y) else np.nan


def recall_per_class(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per class, the share of its samples predicted as it (NaN if none)."""
    truth, guess = np.argmax(y_true, axis=1), np.argmax(probs, axis=1)
    n = np.asarray(y_true).shape[1]
    return np.array([float((guess[truth == c] == c).mean()) if (truth == c).any() else np.nan
                     for c in range(n)])


def task_log_loss(y_true: np.ndarray, probs: np.ndarray, clip: float,
                  task: str = "multilabel") -> float:
    """The task's metric: multiclass log loss, or binary log loss averaged over labels."""
    if task == "multiclass":
        return multiclass_log_loss(y_true, probs, clip)
    return mean_log_loss(y_true, probs, clip)
