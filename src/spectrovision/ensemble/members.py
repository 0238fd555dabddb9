"""The member interface shared by baselines and tabular members: fit and predict over row
indices of the sample sheet, cross-fitted per fold into member tables.

A :class:`Member` has ``fit(train_rows, y_train) -> state`` and ``predict(state, rows) ->
probabilities`` over row indices of one sample list (the sheet it was prepared over);
:func:`cross_fit` runs it per fold (fit on every sample not held out, predict the held-out
and the test samples), gathers the folds exactly as model predictions are gathered and
hands back each fold's state, which :func:`predict_fitted` applies to another sheet's rows
(a new data set). Members that read renders get the coarse render features of
:func:`load_stack_features`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .gather import combine_folds, gather_member
from .tables import label_matrix
from ..errors import InputError
from ..io import read_csv
from ..metrics import clip_class_probs

PathLike = str | os.PathLike[str]


class Member(Protocol):
    """What :func:`cross_fit` runs per fold: a fit over training rows giving a picklable
    state, and probabilities of any rows from a state."""

    def fit(self, train: np.ndarray, y: np.ndarray) -> Any: ...

    def predict(self, state: Any, rows: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Renders:
    """The stacked renders (every split) a member reads, and their sample-id lists; empty
    for a member that reads no representation."""

    stacks: tuple[str, ...] = ()
    stack_ids: tuple[str, ...] = ()

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> Renders:
        """From a job's named inputs ``stacks`` and ``stack_ids``."""
        return cls(tuple(map(str, inputs["stacks"])), tuple(map(str, inputs["stack_ids"])))


# --- running a member over the folds ------------------------------------------------------

def cross_fit(member: Member, sample_ids: Sequence[str], label_table: pd.DataFrame,
              folds: pd.DataFrame, test_ids: Sequence[str], labels: Sequence[str],
              clip: float, task: str = "multilabel",
              fitted: dict[int, Any] | None = None,
              fold_combine: str = "prob_mean") -> tuple[pd.DataFrame, pd.DataFrame]:
    """OOF and test tables of a member fitted per fold on the training rows of folds.csv
    (every row whose fold differs from the held-out one, fold -1 included). Multiclass:
    each row of probabilities is clipped, renormalised and stored as log-probabilities.
    ``fitted`` (a dict) receives each fold's fitted state, by fold; the test table combines
    the folds by ``fold_combine`` (:func:`.gather.combine_folds`)."""
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
        state = member.fit(train_rows, y_all[~held])
        probs = member.predict(state, np.concatenate([held_rows, test_rows]))
        if fitted is not None:
            fitted[fold] = state
        oof_by_fold[fold] = _logit_table(fold_ids[held], probs[: len(held_rows)], labels, clip,
                                         task)
        test_by_fold[fold] = _logit_table(list(test_ids), probs[len(held_rows):], labels, clip,
                                          task)
    return gather_member(oof_by_fold, test_by_fold, folds, labels, clip, task, fold_combine)


def predict_fitted(member: Member, states: Mapping[int, Any], sample_ids: Sequence[str],
                   labels: Sequence[str], clip: float, task: str = "multilabel",
                   fold_combine: str = "prob_mean") -> pd.DataFrame:
    """The logit table of ``sample_ids`` (rows 0.. of the sheet ``member`` was prepared over)
    from the fitted state of every fold, combined by ``fold_combine`` exactly as
    :func:`cross_fit` makes its test table."""
    rows = np.arange(len(sample_ids))
    tables = [_logit_table(sample_ids, member.predict(states[fold], rows), labels, clip, task)
              for fold in sorted(states)]
    return combine_folds(tables, labels, clip, task, fold_combine)


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


def unlabelled_ids(sheet: pd.DataFrame) -> list[str]:
    """The test samples of a member: every unlabelled sample, in sheet order."""
    return list(sheet.loc[~sheet["labelled"], "sample_id"])


# --- render features ----------------------------------------------------------------------

def column_band_edges(stack: np.ndarray, bands: int, key: str) -> np.ndarray:
    """Edges of ``bands`` near-equal column bands of ``(N, C, n_mass, n_x)`` images (for
    ``np.maximum.reduceat``); ``key`` names the setting in the error of a bad count."""
    if stack.ndim != 4:
        raise ValueError(f"expected (N, C, n_mass, n_x) images, got shape {stack.shape}")
    n_x = stack.shape[3]
    if not 1 <= bands <= n_x:
        raise ValueError(f"{key} must lie in [1, {n_x}], got {bands}")
    return np.linspace(0, n_x, bands + 1).round().astype(int)


def coarse_time_features(stack: np.ndarray, time_bins: int, chunk: int = 256) -> np.ndarray:
    """Channel 0 of ``(N, C, n_mass, n_x)`` images max-pooled into ``time_bins`` near-equal
    bins along x: features ``(N, n_mass * time_bins)`` (read in chunks; memmaps welcome)."""
    edges = column_band_edges(stack, time_bins, "time_bins")
    n, _, n_mass, _ = stack.shape
    out = np.empty((n, n_mass, time_bins), dtype=np.float32)
    for start in range(0, n, chunk):
        images = np.asarray(stack[start:start + chunk, 0], dtype=np.float32)
        out[start:start + chunk] = np.maximum.reduceat(images, edges[:-1], axis=2)
    return out.reshape(n, n_mass * time_bins)


def load_stack_features(stacks: Sequence[str | os.PathLike[str]],
                        id_lists: Sequence[str | os.PathLike[str]], time_bins: int,
                        sample_ids: Sequence[str],
                        featurize: Callable[[np.ndarray], np.ndarray] | None = None
                        ) -> np.ndarray:
    """Features of ``sample_ids`` (rows, this order) from stacked renders and their id CSVs:
    :func:`coarse_time_features` with ``time_bins``, or ``featurize(stack)`` (rows = the
    stack's images) when given."""
    opened, which, row = stack_locations(stacks, id_lists, sample_ids)
    blocks = [coarse_time_features(stack, time_bins) if featurize is None
              else featurize(stack) for stack in opened]
    offsets = np.cumsum([0] + [len(stack) for stack in opened])
    return np.concatenate(blocks)[offsets[which] + row]


def stack_locations(stacks: Sequence[str | os.PathLike[str]],
                    id_lists: Sequence[str | os.PathLike[str]], sample_ids: Sequence[str]
                    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The stacked renders opened as memmaps, and for each of ``sample_ids`` the stack
    (index into ``stacks``) and the row in it that holds its image (an InputError when an
    id list and its stack disagree or a sample has no image)."""
    if not stacks:
        raise InputError("baseline_settings.benchmark_lr", "no rendered stacks to read",
                         "define a representation (representations:) for benchmark_lr, or "
                         "drop benchmark_lr from baselines:")
    opened, row_of = [], {}
    for k, (stack_path, csv_path) in enumerate(zip(stacks, id_lists)):
        stack = np.load(stack_path, mmap_mode="r")
        listed = read_csv(csv_path)["sample_id"].tolist()
        if len(listed) != stack.shape[0]:
            raise InputError(csv_path, f"lists {len(listed)} samples but {Path(stack_path).name} "
                             f"holds {stack.shape[0]} images", "re-run the render stack rule")
        opened.append(stack)
        row_of.update({s: (k, i) for i, s in enumerate(listed)})
    absent = [s for s in sample_ids if s not in row_of]
    if absent:
        raise InputError(str(id_lists[0]), f"{len(absent)} samples have no rendered image, "
                         f"e.g. {absent[:5]}", "render every split of the sample sheet")
    where = np.array([row_of[s] for s in sample_ids], dtype=int).reshape(-1, 2)
    return opened, where[:, 0], where[:, 1]
