"""Baselines scored beside the CNNs on the same folds, written as ensemble members.

- ``prior``: per-label prevalence of the training folds.
- ``conditional_prior``: prevalence per value of a metadata column (``derivatized`` for
  Mars-2, ``instrument_type`` for Mars-1), smoothed toward the global prior.
- ``benchmark_lr``: the public benchmark recipe: the rendered intensity image max-pooled
  into coarse time bins per mass, then per-label L1 logistic regression (liblinear).

Each baseline is a ``fit_predict(train_rows, y_train, predict_rows) -> probabilities``
function over row indices of one sample list; :func:`cross_fit` runs it per fold (fit on
every sample not held out, predict the held-out and the test samples) and gathers the
folds exactly as model predictions are gathered.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .combine import gather_member, label_matrix
from ..errors import InputError
from ..metrics import clip_class_probs

log = logging.getLogger(__name__)
BASELINES = ("prior", "conditional_prior", "benchmark_lr")
GROUP_COLUMNS = ("derivatized", "instrument_type")
FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# --- running a baseline over the folds ---------------------------------------------------

def cross_fit(fit_predict: FitPredict, sample_ids: Sequence[str], label_table: pd.DataFrame,
              folds: pd.DataFrame, test_ids: Sequence[str], labels: Sequence[str],
              clip: float, task: str = "multilabel") -> tuple[pd.DataFrame, pd.DataFrame]:
    """OOF and test tables of a baseline fitted per fold on the training rows of folds.csv
    (every row whose fold differs from the held-out one, fold -1 included). Multiclass:
    each row of probabilities is clipped, renormalised and stored as log-probabilities."""
    row_of = {s: i for i, s in enumerate(sample_ids)}
    fold_ids = folds["sample_id"].astype(str).to_numpy()
    unknown = [s for s in [*fold_ids, *test_ids] if s not in row_of]
    if unknown:
        raise InputError("folds.csv", f"{len(unknown)} samples are not in the sample sheet, "
                         f"e.g. {unknown[:5]}", "re-run the folds rule for this data set")
    y_all = label_matrix(label_table, list(fold_ids), labels, "folds.csv")
    test_rows = np.array([row_of[s] for s in test_ids], dtype=int)
    oof_by_fold: dict[int, pd.DataFrame] = {}
    test_by_fold: dict[int, pd.DataFrame] = {}
    for fold in sorted(int(f) for f in folds["fold"].unique() if f >= 0):
        held = folds["fold"].to_numpy() == fold
        train_rows = np.array([row_of[s] for s in fold_ids[~held]], dtype=int)
        held_rows = np.array([row_of[s] for s in fold_ids[held]], dtype=int)
        probs = fit_predict(train_rows, y_all[~held], np.concatenate([held_rows, test_rows]))
        oof_by_fold[fold] = _logit_table(fold_ids[held], probs[: len(held_rows)], labels, clip,
                                         task)
        test_by_fold[fold] = _logit_table(list(test_ids), probs[len(held_rows):], labels, clip,
                                          task)
    return gather_member(oof_by_fold, test_by_fold, folds, labels, clip, task)


def _logit_table(ids: Sequence[str], probs: np.ndarray, labels: Sequence[str],
                 clip: float, task: str = "multilabel") -> pd.DataFrame:
    if task == "multiclass":
        scores = np.log(clip_class_probs(probs, clip))
    else:
        p = np.clip(probs, clip, 1.0 - clip)
        scores = np.log(p) - np.log1p(-p)
    table = pd.DataFrame(scores, columns=list(labels))
    table.insert(0, "sample_id", list(ids))
    return table


# --- prior and conditional prior ---------------------------------------------------------

def prior_fit_predict() -> FitPredict:
    """Predict every sample with the training prevalence of each label."""
    def fit_predict(train: np.ndarray, y: np.ndarray, predict: np.ndarray) -> np.ndarray:
        return np.tile(y.mean(axis=0), (len(predict), 1))
    return fit_predict


def conditional_prior_fit_predict(groups: Sequence[object], smoothing: float) -> FitPredict:
    """Prevalence per group, shrunk toward the global prevalence:
    ``(positives_g + smoothing * prior) / (n_g + smoothing)``; unseen groups get the prior."""
    codes = pd.Series(list(groups), dtype=object).fillna("<missing>").astype(str).to_numpy()

    def fit_predict(train: np.ndarray, y: np.ndarray, predict: np.ndarray) -> np.ndarray:
        prior = y.mean(axis=0)
        out = np.tile(prior, (len(predict), 1))
        train_codes = codes[train]
        for value in np.unique(train_codes):
            in_group = train_codes == value
            p = (y[in_group].sum(axis=0) + smoothing * prior) / (in_group.sum() + smoothing)
            out[codes[predict] == value] = p
        return out
    return fit_predict


def group_column(sheet: pd.DataFrame, column: str | None) -> str | None:
    """The metadata column the conditional prior groups by: ``column`` if given, else the
    first of derivatized / instrument_type in the sheet (None when there is none)."""
    if column is not None:
        if column not in sheet.columns:
            raise InputError("sample sheet", f"metadata column '{column}' is missing",
                             "set baseline_settings.conditional_prior.column to a column of "
                             "data.metadata_columns", column=column)
        return column
    return next((c for c in GROUP_COLUMNS if c in sheet.columns), None)


# --- benchmark logistic regression -------------------------------------------------------

def coarse_time_features(stack: np.ndarray, time_bins: int, chunk: int = 256) -> np.ndarray:
    """Channel 0 of ``(N, C, n_mass, n_x)`` images max-pooled into ``time_bins`` near-equal
    bins along x: features ``(N, n_mass * time_bins)`` (read in chunks; memmaps welcome)."""
    if stack.ndim != 4:
        raise ValueError(f"expected (N, C, n_mass, n_x) images, got shape {stack.shape}")
    n, _, n_mass, n_x = stack.shape
    if not 1 <= time_bins <= n_x:
        raise ValueError(f"time_bins must lie in [1, {n_x}], got {time_bins}")
    edges = np.linspace(0, n_x, time_bins + 1).round().astype(int)
    out = np.empty((n, n_mass, time_bins), dtype=np.float32)
    for start in range(0, n, chunk):
        images = np.asarray(stack[start:start + chunk, 0], dtype=np.float32)
        out[start:start + chunk] = np.maximum.reduceat(images, edges[:-1], axis=2)
    return out.reshape(n, n_mass * time_bins)


def load_stack_features(stacks: Sequence[str | os.PathLike[str]],
                        id_lists: Sequence[str | os.PathLike[str]], time_bins: int,
                        sample_ids: Sequence[str]) -> np.ndarray:
    """Features of ``sample_ids`` (rows, this order) from stacked renders and their id CSVs."""
    if not stacks:
        raise InputError("baseline_settings.benchmark_lr", "no rendered stacks to read",
                         "define a representation (representations:) for benchmark_lr, or "
                         "drop benchmark_lr from baselines:")
    blocks, ids = [], []
    for stack_path, csv_path in zip(stacks, id_lists):
        stack = np.load(stack_path, mmap_mode="r")
        listed = pd.read_csv(csv_path, dtype={"sample_id": str})["sample_id"].tolist()
        if len(listed) != stack.shape[0]:
            raise InputError(csv_path, f"lists {len(listed)} samples but {Path(stack_path).name} "
                             f"holds {stack.shape[0]} images", "re-run the render stack rule")
        blocks.append(coarse_time_features(stack, time_bins))
        ids += listed
    features = np.concatenate(blocks)
    row_of = {s: i for i, s in enumerate(ids)}
    absent = [s for s in sample_ids if s not in row_of]
    if absent:
        raise InputError(str(id_lists[0]), f"{len(absent)} samples have no rendered image, "
                         f"e.g. {absent[:5]}", "render every split of the sample sheet")
    return features[[row_of[s] for s in sample_ids]]


def l1_penalty() -> dict[str, object]:
    """The L1 penalty argument of LogisticRegression (``l1_ratio=1`` from scikit-learn 1.8,
    where ``penalty`` is deprecated; ``penalty="l1"`` before)."""
    import sklearn

    major, minor = (int(x) for x in re.findall(r"\d+", sklearn.__version__)[:2])
    return {"l1_ratio": 1.0} if (major, minor) >= (1, 8) else {"penalty": "l1"}


def logistic_fit_predict(features: np.ndarray, c: float, seed: int = 0) -> FitPredict:
    """Per-label L1 logistic regression (liblinear); a label constant in the training rows
    is predicted by its prevalence."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    def fit_predict(train: np.ndarray, y: np.ndarray, predict: np.ndarray) -> np.ndarray:
        out = np.tile(y.mean(axis=0), (len(predict), 1))
        for j in range(y.shape[1]):
            if np.unique(y[:, j]).size < 2:
                continue
            model = LogisticRegression(solver="liblinear", C=c, random_state=seed,
                                       max_iter=1000, **l1_penalty())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=ConvergenceWarning)
                model.fit(features[train], y[:, j])
            out[:, j] = model.predict_proba(features[predict])[:, 1]
        return out
    return fit_predict


# --- file-level entry point (called by workflow/scripts) ---------------------------------

def baseline_fit_predict(name: str, sheet: pd.DataFrame, settings: dict[str, Any],
                         stacks: Sequence[str] = (), stack_ids: Sequence[str] = (),
                         seed: int = 0) -> FitPredict:
    """The fit/predict function of a named baseline over the rows of ``sheet``."""
    if name == "prior":
        return prior_fit_predict()
    if name == "conditional_prior":
        column = group_column(sheet, settings.get("column"))
        if column is None:
            log.warning("no derivatized/instrument_type column: conditional_prior = prior")
            return prior_fit_predict()
        return conditional_prior_fit_predict(sheet[column].tolist(),
                                             float(settings.get("smoothing", 10.0)))
    if name == "benchmark_lr":
        features = load_stack_features(stacks, stack_ids, int(settings.get("time_bins", 8)),
                                       list(sheet["sample_id"]))
        return logistic_fit_predict(features, float(settings.get("C", 1.0)), seed)
    raise ValueError(f"unknown baseline '{name}' (known: {BASELINES})")


def run_baseline(name: str, data_cfg: dict[str, Any], folds_path: str, labels: Sequence[str],
                 settings: dict[str, Any], clip: float, oof_out: str, test_out: str,
                 stacks: Sequence[str] = (), stack_ids: Sequence[str] = (),
                 seed: int = 0, task: str = "multilabel") -> None:
    """Fit a baseline on the folds of ``folds_path``; write its member OOF and test tables
    (test = every unlabelled sample of the sheet, in sheet order)."""
    from ..data.folds import read_folds
    from ..data.sheet import sample_sheet
    from ..io import write_parquet

    sheet = sample_sheet(data_cfg)
    fit_predict = baseline_fit_predict(name, sheet, settings, stacks, stack_ids, seed)
    test_ids = list(sheet.loc[~sheet["labelled"], "sample_id"])
    oof, test = cross_fit(fit_predict, list(sheet["sample_id"]), sheet.attrs["label_table"],
                          read_folds(folds_path), test_ids, labels, clip, task)
    log.info("%s: %d OOF rows, %d test rows", name, len(oof), len(test))
    write_parquet(oof_out, oof)
    write_parquet(test_out, test)
