"""Gather: one model's per-fold prediction tables into one member (OOF of every fold, test =
the folds' predictions combined by ``ensemble.fold_combine``: :data:`FOLD_COMBINES`).

A member's OOF row comes from one fold model; its test row from all of them. ``prob_mean``
(the logit of the mean clipped probability) is less confident than any one model wherever
the folds disagree, so weights and shrink fitted on OOF rows misjudge it; ``logit_mean``
(the mean of the clipped logits) keeps one model's scale.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .combine import combine_logits
from .tables import read_logit_table, write_member_tables
from ..errors import InputError
from ..metrics import clipped_probs, scores_of_probs

PathLike = str | os.PathLike[str]
FOLD_COMBINES = ("prob_mean", "logit_mean")  # ensemble.fold_combine


def mean_clipped_logit(tables: Sequence[pd.DataFrame], labels: Sequence[str],
                       clip: float, task: str = "multilabel") -> pd.DataFrame:
    """``logit(mean_k clip(sigmoid(x_k)))`` over tables with the same samples, first's order;
    multiclass: ``log(mean_k renormalised clip(softmax(x_k)))`` (log-probabilities)."""
    return combine_folds(tables, labels, clip, task, "prob_mean")


def combine_folds(tables: Sequence[pd.DataFrame], labels: Sequence[str], clip: float,
                  task: str = "multilabel", how: str = "prob_mean") -> pd.DataFrame:
    """One table of the folds' tables (same samples, the first's order): ``prob_mean`` =
    :func:`mean_clipped_logit`; ``logit_mean`` = ``mean_k logit(clip(sigmoid(x_k)))``
    (multiclass: the mean of the clipped log-probabilities, renormalised)."""
    if how not in FOLD_COMBINES:
        raise ValueError(f"fold_combine must be one of {FOLD_COMBINES}, got '{how}'")
    if not tables:
        raise ValueError("no tables to average")
    ids = tables[0]["sample_id"].astype(str)
    scores = []
    for k, table in enumerate(tables):
        aligned = table.set_index("sample_id").reindex(ids)
        if aligned[list(labels)].isna().to_numpy().any() or len(table) != len(ids):
            raise InputError(f"table {k}", "holds other sample ids than the first table",
                             "predict the same test samples in every fold")
        scores.append(aligned[list(labels)].to_numpy(np.float64))
    if how == "prob_mean":
        combined = scores_of_probs(np.mean([clipped_probs(x, clip, task) for x in scores],
                                           axis=0), task)
    else:  # the members' combination, with equal weights
        combined = combine_logits(scores, clip, task=task)
    out = pd.DataFrame(combined, columns=list(labels))
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
                  labels: Sequence[str], clip: float, task: str = "multilabel",
                  fold_combine: str = "prob_mean") -> tuple[pd.DataFrame, pd.DataFrame]:
    """A member's OOF table (all folds) and test table (the folds combined by
    ``fold_combine``, :func:`combine_folds`)."""
    oof = gather_oof(oof_by_fold, folds, labels)
    test = combine_folds([test_by_fold[k] for k in sorted(test_by_fold)], labels, clip, task,
                         fold_combine)
    return oof, test


def run_gather(*, inputs: Mapping[str, Sequence[PathLike] | PathLike],
               outputs: Mapping[str, PathLike], labels: Sequence[str], clip: float,
               task: str, fold_combine: str = "prob_mean") -> None:
    """Gather one model's per-fold prediction files (``inputs["oof"]``/``["test"]``: fold k =
    k-th path; ``inputs["folds"]``) into the member files ``outputs["oof"]``/``["test"]``."""
    from ..data.folds import read_folds

    oofs = {k: read_logit_table(p, labels) for k, p in enumerate(inputs["oof"])}
    tests = {k: read_logit_table(p, labels) for k, p in enumerate(inputs["test"])}
    oof, test = gather_member(oofs, tests, read_folds(inputs["folds"]), labels, clip, task,
                              fold_combine)
    write_member_tables(outputs, oof, test)
