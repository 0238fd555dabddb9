"""Member logit tables: reading and checking them, and the label matrix they are scored on.

Tables are DataFrames with ``sample_id`` + one float logit column per label (OOF tables
also carry ``fold``; multiclass: log-probabilities, one column per class).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError


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


def write_member_tables(outputs: Mapping[str, str | os.PathLike[str]], oof: pd.DataFrame,
                        test: pd.DataFrame) -> None:
    """Write a member's OOF and test tables to ``outputs["oof"]`` and ``outputs["test"]``."""
    from ..io import write_parquet

    write_parquet(outputs["oof"], oof)
    write_parquet(outputs["test"], test)
