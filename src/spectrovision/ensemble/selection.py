"""Choosing members: scores per member and label, greedy forward/backward selection on the
out-of-fold log loss (once, or on bootstrap resamples of the rows: bagged), per-label weights
and the shrink toward the prior; every step deterministic (ties by member name, bags by
their seed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar

from .combine import combine_logits, normalise_weights, shrunk_mean
from ..errors import InputError
from ..metrics import (accuracy, clip_class_probs, clip_probs, clipped_logits, clipped_probs,
                       clipped_scores, log_loss_per_class, log_loss_per_label, logit,
                       recall_per_class, sigmoid, task_log_loss, to_probs)

SELECTIONS = ("all", "greedy", "bagged", "list")


def ensemble_loss(member_logits: Sequence[np.ndarray], y: np.ndarray, clip: float,
                  task: str = "multilabel") -> float:
    """Mean log loss (over labels; multiclass log loss) of the equal-weight logit average."""
    if task == "multiclass":
        combined = combine_logits(member_logits, clip, task=task)
        return task_log_loss(y, to_probs(combined, task), clip, task)
    return float(log_loss_per_label(y, sigmoid(combine_logits(member_logits, clip)), clip).mean())


def score_members(member_logits: Mapping[str, np.ndarray], y: np.ndarray,
                  labels: Sequence[str], clip: float, task: str = "multilabel") -> pd.DataFrame:
    """``member,label,log_loss`` for every member and label, plus a ``mean`` row per member.

    Multiclass adds an ``accuracy`` column: per class, log loss = mean ``-log p(class)`` over
    that class's samples and accuracy = its recall; the ``mean`` row holds the multiclass
    log loss and the accuracy over all samples."""
    if task == "multiclass":
        return score_members_multiclass(member_logits, y, labels, clip)
    rows: list[dict[str, Any]] = []
    for name, x in member_logits.items():
        losses = log_loss_per_label(y, clip_probs(sigmoid(x), clip), clip)
        rows += [{"member": name, "label": lab, "log_loss": float(v)}
                 for lab, v in zip(labels, losses)]
        rows.append({"member": name, "label": "mean", "log_loss": float(losses.mean())})
    return pd.DataFrame(rows, columns=["member", "label", "log_loss"])


def score_members_multiclass(member_logits: Mapping[str, np.ndarray], y: np.ndarray,
                             labels: Sequence[str], clip: float) -> pd.DataFrame:
    """``member,label,log_loss,accuracy`` of task multiclass (see :func:`score_members`)."""
    rows: list[dict[str, Any]] = []
    for name, x in member_logits.items():
        probs = clipped_probs(x, clip, "multiclass")
        per_class = log_loss_per_class(y, probs, clip)
        recall = recall_per_class(y, probs)
        rows += [{"member": name, "label": lab, "log_loss": float(v), "accuracy": float(r)}
                 for lab, v, r in zip(labels, per_class, recall)]
        rows.append({"member": name, "label": "mean",
                     "log_loss": task_log_loss(y, probs, clip, "multiclass"),
                     "accuracy": accuracy(y, probs)})
    return pd.DataFrame(rows, columns=["member", "label", "log_loss", "accuracy"])


def greedy_select(member_logits: Mapping[str, np.ndarray], y: np.ndarray,
                  clip: float, task: str = "multilabel") -> tuple[list[str], list[dict[str, Any]]]:
    """Forward selection without replacement on mean OOF log loss, then backward elimination.

    Each step takes the strictly best move (ties broken by member name); forward stops when
    no addition lowers the loss, backward removes members while a removal lowers it.
    Returns the chosen members (in order of addition) and the path of steps with losses.
    """
    if not member_logits:
        raise ValueError("greedy selection needs at least one candidate")
    names = sorted(member_logits)
    chosen: list[str] = []
    path: list[dict[str, Any]] = []
    best = np.inf

    def best_move(members_after: Callable[[str], list[str]],
                  moves: Sequence[str]) -> tuple[float, str]:
        """The lowest (loss, member) over ``moves``; ties go to the first name."""
        return min((ensemble_loss([member_logits[m] for m in members_after(n)], y, clip, task),
                    n) for n in moves)

    while len(chosen) < len(names):
        loss, name = best_move(lambda n: chosen + [n], [n for n in names if n not in chosen])
        if loss >= best:
            break
        chosen.append(name)
        best = loss
        path.append({"step": len(path) + 1, "action": "add", "member": name, "loss": loss})
    while len(chosen) > 1:
        loss, name = best_move(lambda n: [m for m in chosen if m != n], sorted(chosen))
        if loss >= best:
            break
        chosen.remove(name)
        best = loss
        path.append({"step": len(path) + 1, "action": "remove", "member": name, "loss": loss})
    return chosen, path


def fit_label_weights(member_logits: Sequence[np.ndarray], y: np.ndarray, clip: float,
                      prior: np.ndarray | None = None) -> np.ndarray:
    """Non-negative per-label weights (n_members, n_labels), normalised, fitted on OOF log loss.

    Bounded L-BFGS-B from equal weights, per label; equal weights are kept when the fit
    does not improve on them. ``prior`` (n_labels,) given: the prior's logit is one more
    member, fitted from weight zero, whose weight is left out of the result: the members'
    weights then sum to at most one (the ``prior`` argument of :func:`.combine.combine_logits`).
    """
    stacked = np.stack([clipped_logits(x, clip) for x in member_logits])
    n_members, n_rows, n_labels = stacked.shape
    if prior is not None:
        constant = np.broadcast_to(np.asarray(prior, dtype=np.float64), (n_rows, n_labels))
        stacked = np.concatenate([stacked, constant[None]])
    weights = np.full((len(stacked), n_labels), 1.0 / n_members)
    if prior is not None:
        weights[-1] = 0.0
    if len(stacked) == 1:
        return weights
    for j in range(n_labels):
        xj, yj = stacked[:, :, j], y[:, j:j + 1]

        def loss(w: np.ndarray, xj: np.ndarray = xj, yj: np.ndarray = yj) -> float:
            wn = normalise_weights(w[:, None])[:, 0]
            p = sigmoid(wn @ xj)[:, None]
            return float(log_loss_per_label(yj, p, clip)[0])

        start = weights[:, j]
        fit = minimize(loss, start, method="L-BFGS-B", bounds=[(0.0, None)] * len(stacked))
        if fit.fun < loss(start):
            weights[:, j] = normalise_weights(np.clip(fit.x, 0.0, None)[:, None])[:, 0]
    return weights[:n_members]


def prior_scores(y: np.ndarray, clip: float, task: str = "multilabel") -> np.ndarray:
    """The prior of labels ``y`` as member scores (n_labels,): the logit of each label's
    clipped prevalence, or (multiclass) the log of the clipped class shares."""
    share = np.asarray(y, dtype=np.float64).mean(axis=0)
    if task == "multiclass":
        return np.log(clip_class_probs(share[None], clip)[0])
    return logit(clip_probs(share, clip))


def fit_shrink(member_logits: Sequence[np.ndarray], y: np.ndarray, clip: float,
               prior: np.ndarray, task: str = "multilabel",
               base: np.ndarray | None = None) -> np.ndarray:
    """Member weights ``base`` (n_members, n_labels) summing to one per label (``None`` =
    equal weights) times a shrink ``s`` in [0, 1] fitted on OOF log loss (per label;
    multiclass: one ``s`` for every class), the rest on ``prior``: weights (n_members,
    n_labels) summing to ``s`` per label. ``s = 1`` (no shrink) is kept unless the fit beats it."""
    stacked = np.stack([clipped_scores(x, clip, task) for x in member_logits])
    n_members, _, n_labels = stacked.shape
    start = (np.full((n_members, n_labels), 1.0 / n_members) if base is None
             else normalise_weights(np.asarray(base, dtype=np.float64)))

    def loss(s: float, cols: slice) -> float:
        x = shrunk_mean(stacked[:, :, cols], s * start[:, cols], prior[cols], task)
        return task_log_loss(y[:, cols], to_probs(x, task), clip, task)

    groups = [slice(None)] if task == "multiclass" else [slice(j, j + 1) for j in range(n_labels)]
    shrink = np.ones(n_labels)
    for cols in groups:
        fit = minimize_scalar(lambda s, cols=cols: loss(float(s), cols), bounds=(0.0, 1.0),
                              method="bounded", options={"xatol": 1e-4})
        if fit.fun < loss(1.0, cols):
            shrink[cols] = float(fit.x)
    return start * shrink


def bagged_select(member_logits: Mapping[str, np.ndarray], y: np.ndarray, clip: float,
                  task: str = "multilabel", bags: int = 25,
                  seed: int = 0) -> tuple[list[str], list[dict[str, Any]], dict[str, float]]:
    """Greedy selection (:func:`greedy_select`) on ``bags`` bootstrap resamples of the OOF
    rows (drawn with replacement from ``numpy.random.default_rng(seed)``, one after the
    other); a member's weight is its mean share over the bags (1 / the bag's number of
    members where a bag chose it, else 0), so the weights sum to one.

    A member that wins on a few rows only is chosen in few bags and weighs little, where
    one greedy pass would give it a full share (Caruana et al., 2004: bagged ensemble
    selection). Returns the members with a weight (heaviest first, ties by name), each
    bag's choice, and the weights."""
    if not member_logits:
        raise ValueError("bagged selection needs at least one candidate")
    if bags < 1:
        raise ValueError(f"bags must be at least 1, got {bags}")
    rng = np.random.default_rng(seed)
    n_rows = len(y)
    share: dict[str, float] = {}
    path: list[dict[str, Any]] = []
    for bag in range(bags):
        rows = rng.integers(0, n_rows, n_rows)
        chosen, _ = greedy_select({m: x[rows] for m, x in member_logits.items()}, y[rows],
                                  clip, task)
        for m in chosen:
            share[m] = share.get(m, 0.0) + 1.0 / (len(chosen) * bags)
        path.append({"bag": bag + 1, "members": chosen})
    members = sorted(share, key=lambda m: (-share[m], m))
    return members, path, {m: share[m] for m in members}


def choose_members(selection: str, candidates: Sequence[str], listed: Sequence[str],
                   oof: Mapping[str, np.ndarray], y: np.ndarray, clip: float,
                   task: str = "multilabel", bags: int = 25, bag_seed: int = 0,
                   ) -> tuple[list[str], list[dict[str, Any]], dict[str, float] | None]:
    """Members by ``all`` (every candidate), ``list`` (``listed``), ``greedy`` or ``bagged``
    (:func:`bagged_select` with ``bags`` and ``bag_seed``), the selection's path, and the
    members' weights where the selection sets them (bagged; else ``None``: equal)."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got '{selection}'")
    if selection == "list":
        unknown = [m for m in listed if m not in oof]
        if not listed or unknown:
            raise InputError("config", f"ensemble.members names unknown members {unknown} "
                             f"or is empty (known: {sorted(oof)})",
                             "list model or baseline names under ensemble.members")
        return list(dict.fromkeys(listed)), [], None
    if not candidates:
        raise InputError("config", "no ensemble candidates", "define models, or set "
                         "ensemble.include_baselines: true")
    if selection == "all":
        return list(candidates), [], None
    pool = {m: oof[m] for m in candidates}
    if selection == "bagged":
        return bagged_select(pool, y, clip, task, bags, bag_seed)
    chosen, path = greedy_select(pool, y, clip, task)
    return chosen, path, None
