"""Gather per-fold logits into members, select members, combine them, score them.

Tables are DataFrames with ``sample_id`` + one float logit column per label (OOF tables
also carry ``fold``). Members combine by averaging logits of clipped probabilities,
never probabilities. Everything here is deterministic: same inputs, same outputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from ..errors import InputError
from ..metrics import (accuracy, clip_probs, clipped_logits, clipped_probs, clipped_scores,
                      log_loss_per_class, log_loss_per_label, recall_per_class,
                      scores_of_probs, sigmoid, task_log_loss, to_probs)

SELECTIONS = ("all", "greedy", "list")
OPTIMISM_NOTE = ("The ensemble's out-of-fold score is optimistically biased when members "
                 "or weights are chosen on the same out-of-fold predictions (greedy "
                 "selection, per-label weights); compare members on their own rows.")


# --- reading and validating tables -------------------------------------------------------

def read_logit_table(path: str | os.PathLike[str], labels: Sequence[str]) -> pd.DataFrame:
    """Read a logit table and check it: ``sample_id`` unique, every label column finite."""
    table = pd.read_parquet(path)
    return check_logit_table(table, labels, path)


def check_logit_table(table: pd.DataFrame, labels: Sequence[str],
                      path: str | os.PathLike[str] = "<table>") -> pd.DataFrame:
    missing = [c for c in ("sample_id", *labels) if c not in table.columns]
    if missing:
        raise InputError(path, f"columns {missing} are missing (has {list(table.columns)})",
                         "write sample_id plus one logit column per label, in label order",
                         column=missing[0])
    dup = table["sample_id"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(path, f"sample_id '{table['sample_id'].iloc[row]}' occurs twice",
                         "write one row per sample", row=row, column="sample_id")
    values = table[list(labels)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise InputError(path, "non-finite logit", "re-run the prediction that wrote it",
                         row=row, column=labels[col])
    out = table[["sample_id", *labels]].copy()
    out["sample_id"] = out["sample_id"].astype(str)
    if "fold" in table.columns:
        out.insert(1, "fold", table["fold"].to_numpy())
    return out.reset_index(drop=True)


def label_matrix(label_table: pd.DataFrame, sample_ids: Sequence[str],
                 labels: Sequence[str], source: str = "labels") -> np.ndarray:
    """Labels of ``sample_ids`` (rows) x ``labels`` (columns) as floats."""
    absent = [s for s in sample_ids if s not in label_table.index]
    if absent:
        raise InputError(source, f"{len(absent)} samples have no labels, e.g. {absent[:5]}",
                         "predict out-of-fold only labelled samples (results/folds.csv)")
    y = label_table.loc[list(sample_ids), list(labels)].to_numpy(dtype=np.float64)
    if np.isnan(y).any():
        row, col = (int(i) for i in np.argwhere(np.isnan(y))[0])
        raise InputError(source, f"label missing for sample '{sample_ids[row]}'",
                         "fill every label with 0 or 1", column=labels[col])
    return y


# --- gather: folds -> one member ---------------------------------------------------------

def mean_clipped_logit(tables: Sequence[pd.DataFrame], labels: Sequence[str],
                       clip: float, task: str = "multilabel") -> pd.DataFrame:
    """``logit(mean_k clip(sigmoid(x_k)))`` over tables with the same samples, first's order;
    multiclass: ``log(mean_k renormalised clip(softmax(x_k)))`` (log-probabilities)."""
    if not tables:
        raise ValueError("no tables to average")
    ids = tables[0]["sample_id"].astype(str)
    probs = np.zeros((len(ids), len(labels)))
    for k, table in enumerate(tables):
        aligned = table.set_index("sample_id").reindex(ids)
        if aligned[list(labels)].isna().to_numpy().any() or len(table) != len(ids):
            raise InputError(f"table {k}", "holds other sample ids than the first table",
                             "predict the same test samples in every fold")
        probs += clipped_probs(aligned[list(labels)].to_numpy(np.float64), clip, task)
    out = pd.DataFrame(scores_of_probs(probs / len(tables), task), columns=list(labels))
    out.insert(0, "sample_id", ids.to_numpy())
    return out


def gather_oof(oof_by_fold: Mapping[int, pd.DataFrame], folds: pd.DataFrame,
               labels: Sequence[str]) -> pd.DataFrame:
    """All folds' held-out logits, one row per sample with ``fold >= 0``, in folds.csv order.

    Each fold's table must hold exactly the samples that folds.csv holds out in that fold.
    """
    held = folds[folds["fold"] >= 0].astype({"sample_id": str})
    parts = []
    for fold in sorted(held["fold"].unique()):
        if int(fold) not in oof_by_fold:
            raise InputError("folds.csv", f"fold {fold} has no out-of-fold table",
                             "predict every fold listed in results/folds.csv")
        table = oof_by_fold[int(fold)]
        expected = set(held.loc[held["fold"] == fold, "sample_id"])
        got = set(table["sample_id"].astype(str))
        if expected != got:
            raise InputError(f"out-of-fold table of fold {fold}",
                             f"{len(expected - got)} held-out samples missing "
                             f"(e.g. {sorted(expected - got)[:5]}), {len(got - expected)} "
                             f"samples not held out in this fold (e.g. {sorted(got - expected)[:5]})",
                             "re-run prediction against the current results/folds.csv")
        parts.append(table.assign(fold=int(fold)))
    joined = pd.concat(parts).set_index("sample_id").reindex(held["sample_id"])
    out = joined[list(labels)].reset_index()
    out.insert(1, "fold", held["fold"].astype(int).to_numpy())
    return out


def gather_member(oof_by_fold: Mapping[int, pd.DataFrame],
                  test_by_fold: Mapping[int, pd.DataFrame], folds: pd.DataFrame,
                  labels: Sequence[str], clip: float,
                  task: str = "multilabel") -> tuple[pd.DataFrame, pd.DataFrame]:
    """A member's OOF table (all folds) and test table (mean clipped probability over folds)."""
    oof = gather_oof(oof_by_fold, folds, labels)
    test = mean_clipped_logit([test_by_fold[k] for k in sorted(test_by_fold)], labels, clip,
                              task)
    return oof, test


# --- combining and scoring ---------------------------------------------------------------

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


# --- selection ---------------------------------------------------------------------------

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
    while len(chosen) < len(names):
        trials = [(ensemble_loss([member_logits[m] for m in chosen + [n]], y, clip, task), n)
                  for n in names if n not in chosen]
        loss, name = min(trials)
        if loss >= best:
            break
        chosen.append(name)
        best = loss
        path.append({"step": len(path) + 1, "action": "add", "member": name, "loss": loss})
    while len(chosen) > 1:
        trials = [(ensemble_loss([member_logits[m] for m in chosen if m != n], y, clip, task),
                   n)
                  for n in sorted(chosen)]
        loss, name = min(trials)
        if loss >= best:
            break
        chosen.remove(name)
        best = loss
        path.append({"step": len(path) + 1, "action": "remove", "member": name, "loss": loss})
    return chosen, path


def fit_label_weights(member_logits: Sequence[np.ndarray], y: np.ndarray,
                      clip: float) -> np.ndarray:
    """Non-negative per-label weights (n_members, n_labels), normalised, fitted on OOF log loss.

    Bounded L-BFGS-B from equal weights, per label; equal weights are kept when the fit
    does not improve on them.
    """
    stacked = np.stack([clipped_logits(x, clip) for x in member_logits])
    n_members, _, n_labels = stacked.shape
    weights = np.full((n_members, n_labels), 1.0 / n_members)
    if n_members == 1:
        return weights
    for j in range(n_labels):
        xj, yj = stacked[:, :, j], y[:, j:j + 1]

        def loss(w: np.ndarray, xj: np.ndarray = xj, yj: np.ndarray = yj) -> float:
            wn = normalise_weights(w[:, None])[:, 0]
            p = sigmoid(wn @ xj)[:, None]
            return float(log_loss_per_label(yj, p, clip)[0])

        start = weights[:, j]
        fit = minimize(loss, start, method="L-BFGS-B", bounds=[(0.0, None)] * n_members)
        if fit.fun < loss(start):
            weights[:, j] = normalise_weights(np.clip(fit.x, 0.0, None)[:, None])[:, 0]
    return weights


# --- the whole ensemble step -------------------------------------------------------------

@dataclass
class EnsembleResult:
    """What the ensemble step writes."""

    oof: pd.DataFrame
    test: pd.DataFrame
    scores: pd.DataFrame
    selection: dict[str, Any] = field(default_factory=dict)


def aligned_oof(members: Mapping[str, pd.DataFrame], labels: Sequence[str]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The common OOF rows (``sample_id, fold`` of the first member) and each member's
    logits in that row order. Every member must cover the same samples."""
    first_name = next(iter(members))
    ref = members[first_name][["sample_id", "fold"]].reset_index(drop=True)
    ids = set(ref["sample_id"])
    out: dict[str, np.ndarray] = {}
    for name, table in members.items():
        got = set(table["sample_id"])
        if got != ids:
            raise InputError(f"members/{name}/oof_logits.parquet",
                             f"covers other OOF samples than member '{first_name}' "
                             f"({len(ids - got)} missing, {len(got - ids)} extra)",
                             "gather every member on the same results/folds.csv")
        out[name] = table.set_index("sample_id").loc[ref["sample_id"], list(labels)].to_numpy(np.float64)
    return ref, out


def choose_members(selection: str, candidates: Sequence[str], listed: Sequence[str],
                   oof: Mapping[str, np.ndarray], y: np.ndarray,
                   clip: float, task: str = "multilabel") -> tuple[list[str], list[dict[str, Any]]]:
    """Members by ``all`` (every candidate), ``list`` (``listed``) or ``greedy``."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got '{selection}'")
    if selection == "list":
        unknown = [m for m in listed if m not in oof]
        if not listed or unknown:
            raise InputError("config", f"ensemble.members names unknown members {unknown} "
                             f"or is empty (known: {sorted(oof)})",
                             "list model or baseline names under ensemble.members")
        return list(dict.fromkeys(listed)), []
    if not candidates:
        raise InputError("config", "no ensemble candidates", "define models, or set "
                         "ensemble.include_baselines: true")
    if selection == "all":
        return list(candidates), []
    return greedy_select({m: oof[m] for m in candidates}, y, clip, task)


def build_ensemble(oof_tables: Mapping[str, pd.DataFrame],
                   test_tables: Mapping[str, pd.DataFrame], label_table: pd.DataFrame,
                   labels: Sequence[str], candidates: Sequence[str], selection: str,
                   listed: Sequence[str] = (), per_label_weights: bool = False,
                   clip: float = 1e-4, task: str = "multilabel") -> EnsembleResult:
    """Select members among ``candidates``, combine them, and score every member of
    ``oof_tables`` (models and baselines) and the ensemble on the same OOF samples."""
    ref, oof = aligned_oof(oof_tables, labels)
    y = label_matrix(label_table, list(ref["sample_id"]), labels)
    if per_label_weights and task == "multiclass":
        raise ValueError("per-label weights do not apply to task multiclass")
    chosen, path = choose_members(selection, candidates, listed, oof, y, clip, task)
    weights = (fit_label_weights([oof[m] for m in chosen], y, clip) if per_label_weights
               else np.full((len(chosen), len(labels)), 1.0 / len(chosen)))
    ens_oof = combine_logits([oof[m] for m in chosen], clip, weights, task)
    test_ids = test_tables[chosen[0]]["sample_id"]
    for m in chosen:
        if set(test_tables[m]["sample_id"]) != set(test_ids):
            raise InputError(f"members/{m}/test_logits.parquet",
                             f"holds other test samples than member '{chosen[0]}'",
                             "re-run prediction of every member on the current sample sheet")
    test_logits = [test_tables[m].set_index("sample_id").loc[test_ids, list(labels)]
                   .to_numpy(np.float64) for m in chosen]
    ens_test = combine_logits(test_logits, clip, weights, task)
    scores = score_members({**oof, "ensemble": ens_oof}, y, labels, clip, task)
    oof_out = pd.concat([ref, pd.DataFrame(ens_oof, columns=list(labels))], axis=1)
    test_out = pd.DataFrame(ens_test, columns=list(labels))
    test_out.insert(0, "sample_id", test_ids.to_numpy())
    mean = scores[scores["label"] == "mean"].set_index("member")["log_loss"]
    info = {
        "selection": selection,
        "candidates": list(candidates),
        "members": chosen,
        "weights": {m: dict(zip(labels, map(float, w))) for m, w in zip(chosen, weights)},
        "per_label_weights": per_label_weights,
        "greedy_path": path,
        "clip": clip,
        "n_oof_samples": int(len(ref)),
        "oof_mean_log_loss": {m: float(v) for m, v in mean.items()},
        "task": task,
        "note": OPTIMISM_NOTE,
    }
    return EnsembleResult(oof=oof_out, test=test_out, scores=scores, selection=info)


# --- file-level entry points (called by workflow/scripts) --------------------------------

def run_gather(oof_paths: Sequence[str], test_paths: Sequence[str], folds_path: str,
               labels: Sequence[str], clip: float, oof_out: str, test_out: str,
               task: str = "multilabel") -> None:
    """Gather one model's per-fold prediction files (fold k = k-th path) into member files."""
    from ..data.folds import read_folds
    from ..io import write_parquet

    oofs = {k: read_logit_table(p, labels) for k, p in enumerate(oof_paths)}
    tests = {k: read_logit_table(p, labels) for k, p in enumerate(test_paths)}
    oof, test = gather_member(oofs, tests, read_folds(folds_path), labels, clip, task)
    write_parquet(oof_out, oof)
    write_parquet(test_out, test)


def run_ensemble(members: Sequence[str], oof_paths: Sequence[str], test_paths: Sequence[str],
                 data_cfg: Mapping[str, Any], labels: Sequence[str], candidates: Sequence[str],
                 selection: str, listed: Sequence[str], per_label_weights: bool, clip: float,
                 outputs: Mapping[str, str], task: str = "multilabel") -> EnsembleResult:
    """Read member files, build the ensemble, write ``scores``, ``selection``, ``oof``, ``test``."""
    from ..data.sheet import sample_sheet
    from ..io import write_csv, write_json, write_parquet

    oofs = {m: read_logit_table(p, labels) for m, p in zip(members, oof_paths)}
    for m, p in zip(members, oof_paths):
        if "fold" not in oofs[m].columns:
            raise InputError(p, "no 'fold' column", "re-run the gather rule", column="fold")
    tests = {m: read_logit_table(p, labels) for m, p in zip(members, test_paths)}
    label_table = sample_sheet(data_cfg).attrs["label_table"]
    result = build_ensemble(oofs, tests, label_table, labels, candidates, selection, listed,
                            per_label_weights, clip, task)
    write_csv(outputs["scores"], result.scores)
    write_json(outputs["selection"], result.selection)
    write_parquet(outputs["oof"], result.oof)
    write_parquet(outputs["test"], result.test)
    return result
