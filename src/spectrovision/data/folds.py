"""Cross-validation folds: multilabel iterative stratification (Sechidis, Tsoumakas and
Vlahavas 2011, "On the stratification of multi-label data"), written for spectrovision.

Samples are handed out label by label, rarest label first; each goes to the fold that
still wants the most positives of that label (ties: the fold that wants the most
positives of the sample's other labels, then the most samples, then at random from the
seeded generator). Multiclass labels (one column of class names, or one-hot rows with
exactly one 1) are stratified on the class. Entry points: :func:`make_folds` and the
file-level :func:`write_folds`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import read_csv, write_csv

ALWAYS_TRAIN = -1


def write_folds(labelled_path: str | os.PathLike[str], labels: Sequence[str],
                out_path: str | os.PathLike[str], n_folds: int, seed: int,
                val_in_folds: bool = True) -> pd.DataFrame:
    """Make the folds of the labelled samples (``results/sheet/labelled.parquet``, see
    :func:`~spectrovision.data.sheet.read_labelled_sheet`) and write ``folds.csv``
    (``sample_id,fold``, every labelled sample; val samples get -1 unless
    ``val_in_folds``). Returns the table written."""
    from .sheet import read_labelled_sheet

    label_table, rows = read_labelled_sheet(labelled_path, labels)
    always = set() if val_in_folds else set(rows.loc[rows["split"] == "val", "sample_id"])
    folds = make_folds(label_table, n_folds, seed, always)
    table = folds.rename_axis("sample_id").reset_index()
    write_csv(out_path, table)
    return table


def make_folds(labels: pd.DataFrame, n_folds: int, seed: int,
               groups_always_train: set[str] | None = None) -> pd.Series:
    """Fold (0..n_folds-1) of every sample in ``labels`` (index = sample_id), as a Series
    named ``fold``; samples in ``groups_always_train`` get -1 (they always train).

    ``labels``: one 0/1 column per label (multilabel), or one column of class names, or
    one-hot columns with exactly one 1 per row (multiclass: stratified on the class).
    Same labels and seed, same folds.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    always = set(groups_always_train or ()) & set(labels.index)
    folds = pd.Series(ALWAYS_TRAIN, index=labels.index, name="fold", dtype=int)
    held = labels.loc[~labels.index.isin(always)]
    if len(held) < n_folds:
        raise ValueError(f"{len(held)} samples can be held out, fewer than n_folds={n_folds}")
    matrix = stratification_matrix(held)
    assigned = iterative_stratification(matrix, n_folds, np.random.default_rng(seed))
    folds.loc[held.index] = refine_by_moves(matrix, assigned, n_folds)
    return folds


def stratification_matrix(labels: pd.DataFrame) -> np.ndarray:
    """0/1 matrix (samples x strata): the label columns, or one-hot classes (multiclass)."""
    if labels.shape[1] == 1 and not pd.api.types.is_numeric_dtype(labels.iloc[:, 0]):
        classes = labels.iloc[:, 0].astype(str)
        return pd.get_dummies(classes).to_numpy(dtype=np.int8)
    values = labels.to_numpy()
    if pd.isna(values).any() or not np.isin(values, (0, 1)).all():
        raise ValueError("label values must be 0 or 1 (or a single column of class names)")
    return values.astype(np.int8)


def iterative_stratification(matrix: np.ndarray, n_folds: int,
                             rng: np.random.Generator) -> np.ndarray:
    """Fold of each row of a 0/1 (samples x labels) matrix, by iterative stratification."""
    n_samples, n_labels = matrix.shape
    wanted_total = np.full(n_folds, n_samples / n_folds)
    wanted = np.tile(matrix.sum(axis=0) / n_folds, (n_folds, 1))  # (folds, labels)
    fold_of = np.full(n_samples, ALWAYS_TRAIN)
    remaining = np.ones(n_samples, dtype=bool)
    while True:
        counts = matrix[remaining].sum(axis=0)
        if not counts.any():
            break
        label = rarest_label(counts, rng)
        rows = np.flatnonzero(remaining & (matrix[:, label] == 1))
        for row in rng.permutation(rows):
            fold = choose_fold(wanted[:, label], wanted @ matrix[row], wanted_total, rng)
            fold_of[row] = fold
            wanted[fold] -= matrix[row]
            wanted_total[fold] -= 1
        remaining[rows] = False
    for row in rng.permutation(np.flatnonzero(remaining)):  # samples with no label
        fold = choose_fold(wanted_total, wanted_total, wanted_total, rng)
        fold_of[row] = fold
        wanted_total[fold] -= 1
    return fold_of


def rarest_label(counts: np.ndarray, rng: np.random.Generator) -> int:
    """The label with the fewest (but > 0) unassigned positives; ties at random."""
    present = np.where(counts > 0, counts, np.iinfo(counts.dtype).max)
    return int(rng.choice(np.flatnonzero(present == present.min())))


def choose_fold(first: np.ndarray, second: np.ndarray, third: np.ndarray,
                rng: np.random.Generator) -> int:
    """The fold with the largest ``first``; ties by ``second``, then ``third``, then at random."""
    candidates = np.arange(len(first))
    for key in (first, second, third):
        best = key[candidates].max()
        candidates = candidates[np.isclose(key[candidates], best)]
        if len(candidates) == 1:
            return int(candidates[0])
    return int(rng.choice(candidates))


def imbalance(matrix: np.ndarray, fold_of: np.ndarray, n_folds: int) -> float:
    """Sum over folds of squared deviations from the ideal, per label and in size."""
    counts, sizes = fold_counts(matrix, fold_of, n_folds)
    ideal = matrix.sum(axis=0) / n_folds
    return float(((counts - ideal) ** 2).sum() + ((sizes - len(fold_of) / n_folds) ** 2).sum())


def fold_counts(matrix: np.ndarray, fold_of: np.ndarray, n_folds: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Positives per (fold, label) and samples per fold."""
    onehot = np.eye(n_folds)[fold_of]
    return onehot.T @ matrix, onehot.sum(axis=0)


def refine_by_moves(matrix: np.ndarray, fold_of: np.ndarray, n_folds: int,
                    max_steps: int | None = None) -> np.ndarray:
    """Local search after the greedy pass: apply the best single move or pairwise swap
    between two folds while it lowers :func:`imbalance` (dense, co-occurring labels can
    leave the greedy pass a few positives off). Deterministic; never worsens the split."""
    fold_of = fold_of.copy()
    x = matrix.astype(np.float64)
    for _ in range(max_steps or 10 * len(fold_of)):
        move = best_move(x, fold_of, n_folds)
        if move is None:
            break
        for row, fold in move:
            fold_of[row] = fold
    return fold_of


def best_move(x: np.ndarray, fold_of: np.ndarray, n_folds: int
              ) -> list[tuple[int, int]] | None:
    """The (row, new fold) changes of the most improving move or swap; None if none improves."""
    counts, sizes = fold_counts(x, fold_of, n_folds)
    dev = counts - x.sum(axis=0) / n_folds
    size_dev = sizes - len(fold_of) / n_folds
    norms = (x * x).sum(axis=1)
    best_gain, best = 1e-9, None
    for a in range(n_folds):
        rows_a = np.flatnonzero(fold_of == a)
        xa, ga = x[rows_a], x[rows_a] @ dev[a]
        for b in range(n_folds):
            if b == a or not len(rows_a):
                continue
            # move a row of a into b
            gain = -(-2 * ga + 2 * xa @ dev[b] + 2 * norms[rows_a]
                     - 2 * size_dev[a] + 2 * size_dev[b] + 2)
            i = int(gain.argmax())
            if gain[i] > best_gain:
                best_gain, best = float(gain[i]), [(int(rows_a[i]), b)]
            rows_b = np.flatnonzero(fold_of == b)
            if b < a or not len(rows_b):
                continue
            # swap a row of a with a row of b (sizes unchanged)
            xb, g = x[rows_b], dev[a] - dev[b]
            delta = (2 * ((xb @ g)[None, :] - (xa @ g)[:, None])
                     + 2 * (norms[rows_a][:, None] + norms[rows_b][None, :] - 2 * xa @ xb.T))
            i, j = np.unravel_index(int((-delta).argmax()), delta.shape)
            if -delta[i, j] > best_gain:
                best_gain = float(-delta[i, j])
                best = [(int(rows_a[i]), b), (int(rows_b[j]), a)]
    return best


def read_folds(path: str | os.PathLike[str]) -> pd.DataFrame:
    folds = read_csv(path)
    for col in ("sample_id", "fold"):
        if col not in folds.columns:
            raise InputError(path, f"column '{col}' is missing", "re-run the folds rule",
                             column=col)
    return folds


def fold_split(folds: pd.DataFrame, fold: int) -> tuple[list[str], list[str]]:
    """Training and validation sample ids of ``fold`` (sorted, so the order is stable)."""
    if fold not in set(folds["fold"]):
        raise InputError("folds.csv", f"fold {fold} has no samples",
                         "re-run the folds rule with folds.n_folds covering this fold")
    train = sorted(folds.loc[folds["fold"] != fold, "sample_id"].astype(str))
    val = sorted(folds.loc[folds["fold"] == fold, "sample_id"].astype(str))
    return train, val
