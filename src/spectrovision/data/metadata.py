"""Numeric metadata as a model input (a model's ``metadata_columns``).

The columns come from the sample sheet (they must be among ``data.metadata_columns``),
are numbers (a text value is an :class:`~spectrovision.errors.InputError` naming the
column and sample), and are standardised with the mean and standard deviation of the
training fold only (a constant column gets standard deviation 1). Missing values become
0 after standardising, i.e. the training mean. The statistics travel in ``model.pt`` so
prediction applies exactly the training transform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config.checks import check_head_metadata
from ..errors import ConfigError, InputError

SHEET_INTERNAL = ("sample_id", "split", "features_path", "md5", "labelled", "shard")


def check_model_metadata(name: str, settings: Mapping[str, Any],
                         sheet_columns: Sequence[str]) -> None:
    """Parse-time check: a model's metadata columns exist and its head can fuse them
    (``settings``: resolved, see ``resolve_model``)."""
    columns = list(settings["metadata_columns"])
    if not columns:
        return
    missing = [c for c in columns if c not in sheet_columns]
    if missing:
        raise ConfigError(f"config key 'models/{name}/metadata_columns': column '{missing[0]}' "
                          f"is not in the sample sheet (it has "
                          f"{[c for c in sheet_columns if c not in SHEET_INTERNAL]}). Fix: add "
                          "it to data.metadata_columns, or drop it here.")
    check_head_metadata(name, settings["head"], len(columns))


def metadata_values(table: pd.DataFrame, ids: Sequence[str], columns: Sequence[str],
                    source: str = "sample sheet") -> np.ndarray:
    """``(len(ids), len(columns))`` float64 values of ``columns`` for ``ids`` (``table`` has
    a ``sample_id`` column or index); NaN where missing, text is an InputError."""
    indexed = table.set_index("sample_id") if "sample_id" in table.columns else table
    absent = [c for c in columns if c not in indexed.columns]
    if absent:
        raise InputError(source, f"metadata column '{absent[0]}' is missing",
                         "add it to data.metadata_columns", column=absent[0])
    unknown = [s for s in ids if s not in indexed.index]
    if unknown:
        raise InputError(source, f"{len(unknown)} samples are not in the sample sheet, e.g. "
                         f"{unknown[:5]}", "re-run the folds rule for this data set")
    rows = indexed.loc[list(ids), list(columns)]
    out = np.empty(rows.shape, dtype=np.float64)
    for k, col in enumerate(columns):
        values = pd.to_numeric(rows[col], errors="coerce")
        bad = values.isna() & rows[col].notna()
        if bad.any():
            first = rows.index[bad.to_numpy()][0]
            raise InputError(source, f"metadata value {rows[col][bad].iloc[0]!r} of sample "
                             f"'{first}' is not a number", "a model's metadata_columns must be "
                             "numeric: encode text as numbers (e.g. one-hot columns)", column=col)
        out[:, k] = values.to_numpy(dtype=np.float64)
    return out


@dataclass(frozen=True)
class Standardizer:
    """Per-column mean and standard deviation of the training rows."""

    columns: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, columns: Sequence[str]) -> Standardizer:
        with np.errstate(all="ignore"):
            mean = np.nanmean(values, axis=0) if len(values) else np.zeros(values.shape[1])
            std = np.nanstd(values, axis=0) if len(values) else np.ones(values.shape[1])
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        return cls(tuple(columns), mean.astype(np.float64), std.astype(np.float64))

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Standardised float32 values; missing -> 0 (the training mean)."""
        z = (np.asarray(values, dtype=np.float64) - self.mean) / self.std
        return np.nan_to_num(z, nan=0.0).astype(np.float32)

    def to_bundle(self) -> dict[str, Any]:
        return {"meta_columns": list(self.columns), "meta_mean": self.mean.tolist(),
                "meta_std": self.std.tolist()}

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, Any]) -> Standardizer | None:
        """The standardiser stored in a model bundle (None for an image-only model)."""
        if not bundle.get("meta_columns"):
            return None
        return cls(tuple(bundle["meta_columns"]), np.asarray(bundle["meta_mean"], np.float64),
                   np.asarray(bundle["meta_std"], np.float64))
