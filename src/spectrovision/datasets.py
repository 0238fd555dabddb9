"""Dataset adapters: read a data folder's metadata and labels into one sample sheet.

Layouts (config ``data.layout``):
- ``mars2``: GC-MS runs ``time,mass,intensity``; metadata ``derivatized`` (1 or empty).
- ``mars1``: evolved-gas runs ``time,temp,m/z,abundance``; metadata ``instrument_type``.
- ``generic``: run columns from ``data.columns``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError

LAYOUT_COLUMNS: dict[str, dict[str, str | None]] = {
    "mars2": {"time": "time", "temp": None, "mass": "mass", "intensity": "intensity"},
    "mars1": {"time": "time", "temp": "temp", "mass": "m/z", "intensity": "abundance"},
    "generic": {"time": "time", "temp": None, "mass": "mass", "intensity": "intensity"},
}
LAYOUT_METADATA: dict[str, list[str]] = {
    "mars2": ["derivatized"],
    "mars1": ["instrument_type"],
    "generic": [],
}


@dataclass(frozen=True)
class RunColumns:
    """Names of the run-file columns for one layout."""

    time: str
    mass: str
    intensity: str
    temp: str | None = None


def run_columns(data_cfg: dict[str, Any]) -> RunColumns:
    layout = data_cfg.get("layout", "mars2")
    names = dict(LAYOUT_COLUMNS.get(layout, LAYOUT_COLUMNS["generic"]))
    for key, value in (data_cfg.get("columns") or {}).items():
        if value is not None:
            names[key] = value
    return RunColumns(time=names["time"], mass=names["mass"], intensity=names["intensity"],
                      temp=names.get("temp"))


def shard_of(sample_id: str, n_shards: int) -> int:
    """Stable shard of a sample (independent of the other samples and of Python's hash seed)."""
    digest = hashlib.blake2b(sample_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_shards


def load_sample_sheet(config: dict[str, Any]) -> pd.DataFrame:
    """One row per sample: ``sample_id, split, features_path (absolute), md5, labelled, shard``
    plus the layout's metadata columns. ``sheet.attrs['labels']`` lists the label names and
    ``sheet.attrs['label_table']`` holds the labels (index sample_id).
    """
    data_cfg = config["data"]
    root = Path(data_cfg["dir"])
    meta_path = root / data_cfg.get("metadata_file", "metadata.csv")
    if not meta_path.exists():
        raise InputError(meta_path, "metadata file not found",
                         "point data.dir at the data folder, or run `spectrovision demo-data "
                         f"--out {root}` to generate the demo data set")
    meta = pd.read_csv(meta_path, dtype={"sample_id": str, "split": str})
    for col in ("sample_id", "split", "features_path"):
        if col not in meta.columns:
            raise InputError(meta_path, f"required column '{col}' is missing (columns: "
                             f"{list(meta.columns)})", f"add a '{col}' column", column=col)
    dup = meta["sample_id"].duplicated(keep=False)
    if dup.any():
        first = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(meta_path, f"duplicate sample_id '{meta['sample_id'].iloc[first]}' "
                         f"({int(dup.sum())} rows share an id)",
                         "give every sample a unique sample_id", row=first + 2,
                         column="sample_id")
    labels = load_labels(config, set(meta["sample_id"]))
    sheet = pd.DataFrame({
        "sample_id": meta["sample_id"],
        "split": meta["split"],
        "features_path": [str((root / p).resolve()) for p in meta["features_path"]],
        "md5": meta["features_md5_hash"] if "features_md5_hash" in meta.columns else None,
    })
    meta_cols = data_cfg.get("metadata_columns")
    if meta_cols is None:
        meta_cols = LAYOUT_METADATA.get(data_cfg.get("layout", "mars2"), [])
    for col in meta_cols:
        if col not in meta.columns:
            raise InputError(meta_path, f"metadata column '{col}' is missing",
                             "add it, or set data.metadata_columns", column=col)
        sheet[col] = meta[col].to_numpy()
    if "derivatized" in sheet.columns:
        sheet["derivatized"] = sheet["derivatized"].fillna(0).astype(int)
    sheet["labelled"] = sheet["sample_id"].isin(labels.index)
    sheet["shard"] = [shard_of(s, int(config["workflow"]["shards"])) for s in sheet["sample_id"]]
    sheet.attrs["labels"] = list(labels.columns)
    sheet.attrs["label_table"] = labels
    return sheet.reset_index(drop=True)


def load_labels(config: dict[str, Any], known: set[str]) -> pd.DataFrame:
    """Concatenate the label files that exist; the first file fixes label names and order."""
    data_cfg = config["data"]
    root = Path(data_cfg["dir"])
    tables: list[pd.DataFrame] = []
    names: list[str] | None = None
    for fname in data_cfg.get("labels_files", ["train_labels.csv"]):
        path = root / fname
        if not path.exists():
            continue
        table = pd.read_csv(path, dtype={"sample_id": str})
        if "sample_id" not in table.columns:
            raise InputError(path, "no 'sample_id' column", "name the id column sample_id",
                             column="sample_id")
        cols = [c for c in table.columns if c != "sample_id"]
        if names is None:
            names = cols
        elif cols != names:
            raise InputError(path, f"label columns {cols} differ from {names} in the first "
                             "label file", "use the same label columns, in the same order")
        unknown = ~table["sample_id"].isin(known)
        if unknown.any():
            row = int(unknown.to_numpy().nonzero()[0][0])
            raise InputError(path, f"labels for unknown sample '{table['sample_id'].iloc[row]}' "
                             f"({int(unknown.sum())} such rows)",
                             "remove those rows or add the samples to the metadata",
                             row=row + 2, column="sample_id")
        tables.append(table.set_index("sample_id"))
    if names is None:
        raise InputError(root / data_cfg.get("labels_files", ["train_labels.csv"])[0],
                         "no label file found", "provide train_labels.csv in data.dir")
    return pd.concat(tables)
