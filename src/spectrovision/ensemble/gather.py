"""Gather: one model's per-fold prediction tables into one member (OOF of every fold, test =
logit of the mean clipped probability over folds)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .tables import read_logit_table, write_member_tables
from ..errors import InputError
from ..metrics import clipped_probs, scores_of_probs

PathLike = str | os.PathLike[str]


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


def run_gather(*, inputs: Mapping[str, Sequence[PathLike] | PathLike],
               outputs: Mapping[str, PathLike], labels: Sequence[str], clip: float,
               task: str) -> None:
    """Gather one model's per-fold prediction files (``inputs["oof"]``/``["test"]``: fold k =
    k-th path; ``inputs["folds"]``) into the member files ``outputs["oof"]``/``["test"]``."""
    from ..data.folds import read_folds

    oofs = {k: read_logit_table(p, labels) for k, p in enumerate(inputs["oof"])}
    tests = {k: read_logit_table(p, labels) for k, p in enumerate(inputs["test"])}
    oof, test = gather_member(oofs, tests, read_folds(inputs["folds"]), labels, clip, task)
    write_member_tables(outputs, oof, test)
