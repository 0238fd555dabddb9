"""Dataset adapters: read a data folder's metadata and labels into one sample sheet.

Layouts (config ``data.layout``; their run columns and metadata columns are attributes of
their classes in :mod:`spectrovision.data.layouts`):
- ``mars2``: GC-MS runs ``time,mass,intensity``; metadata ``derivatized`` (1 or empty).
- ``mars1``: evolved-gas runs ``time,temp,m/z,abundance``; metadata ``instrument_type``.
- ``generic``: run columns from ``data.columns``.
- ``instrument``: ANDI/AIA netCDF, mzML or JCAMP-DX GC-MS run files, any mix (see
  :mod:`spectrovision.data.instrument`); no layout metadata column.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError, InputError, shown
from ..io import read_csv
from .layouts import DEFAULT_COLUMNS, LAYOUTS
from .tables import check_separator, check_unique_columns

@dataclass(frozen=True)
class RunColumns:
    """Names of the run-file columns for one layout."""

    time: str
    mass: str
    intensity: str
    temp: str | None = None


def run_columns(data_cfg: Mapping[str, Any]) -> RunColumns:
    """The run-file column names of a validated ``data`` block: the layout's own, with
    ``data.columns`` overriding them."""
    names = dict(LAYOUTS.get(data_cfg["layout"]).columns or DEFAULT_COLUMNS)
    for key, value in data_cfg["columns"].items():
        if value is not None:
            names[key] = value
    return RunColumns(time=names["time"], mass=names["mass"], intensity=names["intensity"],
                      temp=names.get("temp"))


def shard_of(sample_id: str, n_shards: int) -> int:
    """Stable shard of a sample (independent of the other samples and of Python's hash seed)."""
    digest = hashlib.blake2b(sample_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_shards


def sample_shards(sample_ids: Sequence[str], labelled: Sequence[bool], n_shards: int
                  ) -> list[int]:
    """Each sample's ingest/render shard: labelled samples in shards ``0..n-1``, unlabelled
    ones in ``n..2n-1``, so new unlabelled runs never touch a shard that training reads."""
    return [shard_of(s, n_shards) + (0 if is_labelled else n_shards)
            for s, is_labelled in zip(sample_ids, labelled)]


SAFE_SAMPLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_SAMPLE_ID_LENGTH = 128  # per-sample files are named {sample_id}.parquet/.npy (limit 255)
TRAIN_SPLIT = "train"
SHEET_REQUIRED = ("sample_id", "split", "features_path")  # the metadata's required columns
KNOWN_SPLITS = (TRAIN_SPLIT, "val", "test")


def load_sample_sheet(config: dict[str, Any], *, labels_required: bool | None = None
                      ) -> pd.DataFrame:
    """One row per sample: ``sample_id, split, features_path (absolute), md5, labelled, shard``
    plus the layout's metadata columns. ``sheet.attrs['labels']`` lists the label names,
    ``sheet.attrs['label_table']`` holds the labels (index sample_id) and
    ``sheet.attrs['findings']`` the tolerated sample-sheet problems (kind -> sample ids),
    which the QC summary lists.

    Checked here, at parse time, each naming file, row and column: the metadata file and
    its required columns exist; sample_id is unique, usable as a file name and at most
    :data:`MAX_SAMPLE_ID_LENGTH` characters; split is one of :data:`KNOWN_SPLITS` exactly;
    features_path is filled in, lies inside ``data.dir`` (or one of ``data.extra_roots``)
    after resolving symlinks, is not a directory and is no other sample's file, checked
    without opening the file; no table has a column name twice or another separator than
    commas, and ids are read as written (``NA`` is an id); ``derivatized`` is 1, 0 or
    empty; label files have unique sample ids, only known samples and 0/1 labels (task
    multiclass: exactly one 1 per row); the submission format, when configured and present,
    names each sample of the metadata at most once.

    Unlabelled samples: a sample in split ``train`` without labels is an error (it is
    meant to be trained on; a missing label row is a data bug). A sample of any other split
    without labels is predicted like a test sample; when its split is *partly* labelled
    (e.g. a val split with some label rows missing) that is recorded as a finding rather
    than an error, since real data sets ship such splits.

    Labels are required (``labels_required`` True) for a training run and optional for an
    apply run, which predicts a batch that may have none; the default (None) reads the
    mode from the config: required unless ``trained_results`` is set. Not required, no
    label file at all (every listed file absent) and ``data.labels_files: []`` give a sheet
    whose samples are all unlabelled (``attrs['labels']`` empty); a sample of split
    ``train`` is still refused without labels, and label files that exist are checked as
    strictly as ever. Required, ``labels_files: []`` is a :class:`ConfigError` and no
    existing label file an InputError, both saying what to add (see :func:`load_labels`).
    """
    data_cfg = config["data"]
    root = Path(data_cfg["dir"])
    meta_path = root / data_cfg["metadata_file"]
    meta = read_metadata(meta_path, root)
    features = contained_paths(meta_path, meta, root, data_cfg["extra_roots"])
    if labels_required is None:
        labels_required = config.get("trained_results") is None
    labels = load_labels(config, set(meta["sample_id"]), required=labels_required)
    check_submission_ids(data_cfg, root, set(meta["sample_id"]))
    sheet = pd.DataFrame({
        "sample_id": meta["sample_id"],
        "split": meta["split"],
        "features_path": features,
        "md5": pd.Series(md5_column(meta), dtype=object),
    })
    meta_cols = data_cfg["metadata_columns"]
    if meta_cols is None:
        meta_cols = LAYOUTS.get(data_cfg["layout"]).metadata
    for col in meta_cols:
        if col not in meta.columns:
            raise InputError(meta_path, f"metadata column '{col}' is missing (columns: "
                             f"{list(meta.columns)})", "add it, or set data.metadata_columns",
                             column=col)
        sheet[col] = meta[col].to_numpy()
    if "derivatized" in sheet.columns:
        sheet["derivatized"] = derivatized_flags(meta_path, sheet["derivatized"])
    sheet["labelled"] = sheet["sample_id"].isin(labels.index)
    sheet["shard"] = sample_shards(sheet["sample_id"], sheet["labelled"],
                                   int(config["workflow"]["shards"]))
    findings = unlabelled_findings(meta_path, sheet, label_paths(data_cfg))
    sheet = sheet.reset_index(drop=True)
    sheet.attrs["labels"] = list(labels.columns)
    sheet.attrs["label_table"] = labels
    sheet.attrs["findings"] = findings
    return sheet


def read_metadata(meta_path: Path, root: Path) -> pd.DataFrame:
    """The metadata table, with its sample-level checks done."""
    if not meta_path.exists():
        raise InputError(meta_path, "metadata file not found",
                         "point data.dir at the data folder, or run `spectrovision demo-data "
                         f"--out {root}` to generate the demo data set")
    meta = read_table(meta_path, {"sample_id": str, "split": str, "features_path": str,
                                  "features_md5_hash": str}, required=SHEET_REQUIRED)
    for col in SHEET_REQUIRED:
        if col not in meta.columns:
            raise InputError(meta_path, f"required column '{col}' is missing (columns: "
                             f"{list(meta.columns)})", f"add a '{col}' column", column=col)
        require_filled(meta_path, meta[col], col)
    safe = meta["sample_id"].map(lambda s: SAFE_SAMPLE_ID.fullmatch(s) is not None)
    if not safe.all():
        row = int((~safe).to_numpy().nonzero()[0][0])
        raise InputError(meta_path, f"sample_id {meta['sample_id'].iloc[row]!r} cannot be a "
                         "file name", "use letters, digits, '_', '.' and '-' only",
                         row=row + 2, column="sample_id")
    long = meta["sample_id"].str.len() > MAX_SAMPLE_ID_LENGTH
    if long.any():
        row = int(long.to_numpy().nonzero()[0][0])
        raise InputError(meta_path, f"sample_id of {len(meta['sample_id'].iloc[row])} "
                         f"characters ({meta['sample_id'].iloc[row][:40]}...) is longer than "
                         f"{MAX_SAMPLE_ID_LENGTH}", f"use ids of at most {MAX_SAMPLE_ID_LENGTH} "
                         "characters (they name the cached files)", row=row + 2,
                         column="sample_id")
    require_unique(meta_path, meta["sample_id"], "give every sample a unique sample_id")
    check_splits(meta_path, meta["split"])
    return meta


def read_table(path: Path, dtype: Any, required: Sequence[str] = (),
               id_columns: Sequence[str] | None = ("sample_id",)) -> pd.DataFrame:
    """A CSV table of the data folder, its ids read as written (``NA`` is an id, see
    :func:`~spectrovision.io.read_csv`; ``id_columns=None``: the first column). One that
    cannot be read as CSV text, has a column name twice, or whose header holds the
    ``required`` names split at another separator (``;``, tab) is an InputError naming it
    (not a pandas traceback, not a silently renamed ``x.1`` column)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader([fh.readline()]), [])
        check_unique_columns(path, header)
        if any(name not in header for name in required):
            check_separator(path, header, required, "tables of the data folder")
        return read_csv(path, id_columns, dtype=dtype)
    except UnicodeDecodeError:
        problem = "is not UTF-8 text (binary, compressed or UTF-16?)"
    except pd.errors.EmptyDataError:
        problem = "is empty"
    except pd.errors.ParserError as exc:
        problem = f"is not a well-formed CSV ({str(exc).strip()[:200]})"
    raise InputError(path, problem, "save it as a comma-separated UTF-8 text file with a "
                     "header line and one value per column on every line")


def check_splits(meta_path: Path, splits: pd.Series) -> None:
    """Every split is exactly one of :data:`KNOWN_SPLITS`, else an InputError naming the row
    (``Train`` or ``train `` would otherwise silently be an unlabelled test sample)."""
    bad = ~splits.isin(KNOWN_SPLITS)
    if not bad.any():
        return
    row = int(bad.to_numpy().nonzero()[0][0])
    value = splits.iloc[row]
    near = value.strip().lower()
    fix = (f"write it exactly as '{near}' (lower case, no spaces)" if near in KNOWN_SPLITS
           else "use train (labelled, trained on), val (validation) or test (predicted)")
    raise InputError(meta_path, f"split {value!r} is not one of {', '.join(KNOWN_SPLITS)} "
                     f"({int(bad.sum())} such rows)", fix, row=row + 2, column="split")


def contained_paths(meta_path: Path, meta: pd.DataFrame, root: Path,
                    extra_roots: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Each sample's features_path, absolute with symlinks resolved; one that resolves outside
    ``root`` and every ``extra_roots`` folder (an absolute path elsewhere, ``..``, a symlink
    pointing out) or into a symlink loop is an InputError naming the row and sample. Only
    links are followed (no file is opened), so a refused file is never read."""
    roots = [resolved(meta_path, root, "data.dir")]
    roots += [resolved(meta_path, Path(extra), "data.extra_roots") for extra in extra_roots]
    out = []
    for row, (sample_id, rel) in enumerate(zip(meta["sample_id"], meta["features_path"])):
        where = {"row": row + 2, "column": "features_path"}
        try:
            path = (root / rel).resolve()
        except (RuntimeError, OSError) as exc:  # RuntimeError: symlink loop (Python < 3.13)
            raise InputError(meta_path, f"features_path {rel!r} of sample '{sample_id}' cannot "
                             f"be resolved: a symlink loop or unreadable link ({exc})",
                             "replace the link by the run file itself", **where) from None
        if not any(path.is_relative_to(folder) for folder in roots):
            raise InputError(meta_path, f"features_path {rel!r} of sample '{sample_id}' lies "
                             f"outside data.dir ({roots[0]}): it resolves to {path}",
                             "copy the file into data.dir and name it relative to data.dir, "
                             "or list its folder in data.extra_roots", **where)
        if path.is_dir():  # a stat, not an open
            raise InputError(meta_path, f"features_path {rel!r} of sample '{sample_id}' is a "
                             f"directory ({path}), not a run file", "name the sample's run "
                             "file inside that folder (e.g. train_features/S0001.csv)", **where)
        out.append(str(path))
    require_own_files(meta_path, list(meta["sample_id"]), out)
    return out


def require_own_files(meta_path: Path, sample_ids: Sequence[str], paths: Sequence[str]
                      ) -> None:
    """No two samples name the same file (after resolving links), else an InputError naming
    both samples and rows: one measurement trained on as two samples leaks across folds."""
    first: dict[str, int] = {}
    for row, path in enumerate(paths):
        if path not in first:
            first[path] = row
            continue
        before = first[path]
        raise InputError(meta_path, f"samples '{sample_ids[before]}' (row {before + 2}) and "
                         f"'{sample_ids[row]}' (row {row + 2}) name the same file {path}",
                         "give each sample its own run file; if both rows are the same "
                         "measurement, keep one of them (a run counted twice leaks between "
                         "training folds)", row=row + 2, column="features_path")


def resolved(meta_path: Path, folder: Path, key: str) -> Path:
    """A data folder, absolute with symlinks resolved (a loop is an InputError naming ``key``)."""
    try:
        return folder.resolve()
    except (RuntimeError, OSError) as exc:
        raise InputError(meta_path, f"{key} folder {str(folder)!r} cannot be resolved ({exc})",
                         f"point {key} at a real folder") from None


def require_filled(path: Path, values: pd.Series, column: str) -> None:
    """Every value of a column is present, else an InputError naming the first empty row."""
    empty = values.isna() | (values.astype(str).str.strip() == "")
    if empty.any():
        row = int(empty.to_numpy().nonzero()[0][0])
        raise InputError(path, f"empty '{column}' ({int(empty.sum())} such rows)",
                         f"fill in '{column}' for every sample", row=row + 2, column=column)


def require_unique(path: Path, ids: pd.Series, fix: str) -> None:
    """No sample_id appears twice, else an InputError naming the first repeated row."""
    dup = ids.duplicated(keep="first")
    if dup.any():
        row = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(path, f"duplicate sample_id '{ids.iloc[row]}' "
                         f"({int(ids.duplicated(keep=False).sum())} rows share an id)",
                         fix, row=row + 2, column="sample_id")


def md5_column(meta: pd.DataFrame) -> list[str | None]:
    """features_md5_hash per sample (None where absent or empty)."""
    if "features_md5_hash" not in meta.columns:
        return [None] * len(meta)
    return [h.strip().lower() if isinstance(h, str) and h.strip() else None
            for h in meta["features_md5_hash"]]


def derivatized_flags(path: Path, values: pd.Series) -> pd.Series:
    """The derivatized column as 0/1 integers (empty = 0); other values are an InputError."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = (numeric.isna() & values.notna()) | ~numeric.fillna(0).isin([0, 1])
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(path, f"derivatized value {values.iloc[row]!r} is not 1, 0 or empty",
                         "write 1 for derivatized samples and leave it empty (or 0) otherwise",
                         row=row + 2, column="derivatized")
    return numeric.fillna(0).astype(int)


def unlabelled_findings(meta_path: Path, sheet: pd.DataFrame, label_files: Sequence[Path]
                        ) -> dict[str, list[str]]:
    """Train samples without labels raise (naming a configured label file that is missing,
    the likely cause, when others were read; else the first such metadata row); partly
    labelled other splits become findings."""
    unlabelled = ~sheet["labelled"]
    in_train = unlabelled & (sheet["split"] == TRAIN_SPLIT)
    if in_train.any():
        row = int(in_train.to_numpy().nonzero()[0][0])
        missing = [path for path in label_files if not path.exists()]
        if missing and sheet["labelled"].any():  # other label files were read: name this one
            raise InputError(missing[0], f"label file not found, and {int(in_train.sum())} "
                             f"sample(s) of split 'train' have no labels (the first is "
                             f"'{sheet['sample_id'].iloc[row]}', {meta_path.name} row {row + 2})",
                             f"put {missing[0].name} (sample_id + one column per label) into "
                             f"{missing[0].parent}, or list the label files that hold the "
                             "train labels in data.labels_files")
        raise InputError(meta_path, f"{int(in_train.sum())} sample(s) of split 'train' have no "
                         f"labels, the first is '{sheet['sample_id'].iloc[row]}'",
                         "add their rows to the label file, or give them another split (e.g. "
                         "test) so that they are predicted", row=row + 2, column="split")
    findings: dict[str, list[str]] = {}
    for split, part in sheet.groupby("split", sort=True):
        missing = part.loc[~part["labelled"], "sample_id"]
        if part["labelled"].any() and len(missing):
            key = f"split '{split}' samples without labels (predicted, not trained on)"
            findings[key] = list(missing)
    return findings


def load_labels(config: dict[str, Any], known: set[str], *, required: bool = True
                ) -> pd.DataFrame:
    """Concatenate the label files that exist; the first file fixes label names and order.

    Each file needs a ``sample_id`` column, the same label columns, 0/1 filled-in values
    (``task: multiclass``: exactly one 1 per row), and only sample ids of the metadata; no
    sample may have two label rows.

    When no label is read (``data.labels_files`` is ``[]``, or none of its files exists):
    ``required`` (a training run), a ConfigError naming the key for ``[]`` and an
    InputError naming the files looked for otherwise, each saying what to add; not
    ``required`` (an apply run), an empty table (no label columns, index ``sample_id``).
    """
    data_cfg = config["data"]
    root = Path(data_cfg["dir"])
    paths = label_paths(data_cfg)
    files = [str(path.relative_to(root)) for path in paths]
    if not paths and required:
        raise ConfigError(
            "config key 'data/labels_files': [] names no label file, but a training run "
            "needs labels. Fix: list the label files inside data.dir (e.g. labels_files: "
            "[train_labels.csv], a sample_id column and one 0/1 column per label), or, to "
            "predict this unlabelled batch with a trained run, set trained_results to that "
            "run's results folder.")
    tables: list[pd.DataFrame] = []
    names: list[str] | None = None
    for path in paths:
        if not path.exists():
            continue
        table = read_label_file(path, known)
        if config["task"] == "multiclass":
            check_one_hot(path, table)
        cols = list(table.columns)
        if names is None:
            names = cols
        elif cols != names:
            raise InputError(path, f"label columns {cols} differ from {names} in the first "
                             "label file", "use the same label columns, in the same order",
                             row=1)
        tables.append(table)
    if names is None and not required:
        return pd.DataFrame(index=pd.Index([], dtype=object, name="sample_id"))
    if names is None:
        raise InputError(paths[0], f"no label file found (data.labels_files: {files}; "
                         f"none exists in {root})", f"add {files[0]} to data.dir (a sample_id "
                         "column and one 0/1 column per label, a row per train sample), or "
                         "name your label files in data.labels_files; to predict an unlabelled "
                         "batch with a trained run, set trained_results instead")
    labels = pd.concat(tables)
    again = labels.index.duplicated()
    if again.any():
        raise InputError(config["data"]["dir"], f"sample '{labels.index[again][0]}' has label "
                         "rows in more than one label file", "keep one label row per sample",
                         column="sample_id")
    return labels


def label_paths(data_cfg: Mapping[str, Any]) -> list[Path]:
    """The configured label files (``data.labels_files``) inside ``data.dir``."""
    return [Path(data_cfg["dir"]) / name for name in data_cfg["labels_files"]]


def read_label_file(path: Path, known: set[str]) -> pd.DataFrame:
    """One label file, indexed by sample_id, with its checks done."""
    table = read_table(path, {"sample_id": str}, required=("sample_id",))
    if "sample_id" not in table.columns:
        raise InputError(path, f"no 'sample_id' column (columns: {list(table.columns)})",
                         "name the id column sample_id", row=1, column="sample_id")
    require_unique(path, table["sample_id"], "keep one label row per sample")
    unknown = ~table["sample_id"].isin(known)
    if unknown.any():
        row = int(unknown.to_numpy().nonzero()[0][0])
        raise InputError(path, f"labels for unknown sample '{table['sample_id'].iloc[row]}' "
                         f"({int(unknown.sum())} such rows)",
                         "remove those rows or add the samples to the metadata",
                         row=row + 2, column="sample_id")
    for col in table.columns.drop("sample_id"):
        values = pd.to_numeric(table[col], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().nonzero()[0][0])
            raise InputError(path, f"label value {shown(table[col].iloc[row])} is empty or "
                             "not a number", "write 0 or 1 (or the class value) in every label "
                             "cell", row=row + 2, column=col)
        binary = values.isin([0, 1])
        if not binary.all():
            row = int((~binary).to_numpy().nonzero()[0][0])
            raise InputError(path, f"label value {shown(table[col].iloc[row])} is not 0 or 1 "
                             f"({int((~binary).sum())} such rows in this column)",
                             "write 1 where the sample has the label and 0 where it has not "
                             "(multiclass: one-hot columns, one per class)",
                             row=row + 2, column=col)
        table[col] = values
    return table.set_index("sample_id")


def check_one_hot(path: Path, table: pd.DataFrame) -> None:
    """Multiclass labels: exactly one 1 per row (0/1 values already checked)."""
    ones = table.sum(axis=1).to_numpy()
    bad = ones != 1
    if bad.any():
        row = int(bad.nonzero()[0][0])
        raise InputError(path, f"sample '{table.index[row]}' has {int(ones[row])} classes set "
                         f"to 1 ({int(bad.sum())} such rows); task multiclass needs exactly one",
                         "set exactly one class column to 1 in every row, or use task: "
                         "multilabel", row=row + 2, column="sample_id")


def check_submission_ids(data_cfg: Mapping[str, Any], root: Path, known: set[str]) -> None:
    """The submission format (when configured and present) names only samples of the
    metadata, each once; otherwise the submission step would fail after training."""
    name = data_cfg["submission_format"]
    path = root / name if name else None
    if path is None or not path.exists():
        return
    table = read_table(path, str, id_columns=None)
    if table.shape[1] < 2:
        return  # the submission step explains a template without label columns
    id_col = table.columns[0]
    ids = table[id_col].astype(str)
    unknown = ~ids.isin(known)
    if unknown.any():
        row = int(unknown.to_numpy().nonzero()[0][0])
        raise InputError(path, f"sample id {ids.iloc[row]!r} is not in the metadata "
                         f"({int(unknown.sum())} such rows)", "add those samples to the "
                         "metadata, remove their rows, or set data.submission_format: null",
                         row=row + 2, column=str(id_col))
    require_unique(path, ids, "keep one row per sample in the submission format")


def sample_sheet(data_cfg: Mapping[str, Any], *, labels_required: bool = True
                 ) -> pd.DataFrame:
    """The sample sheet (labels in ``attrs['label_table']``) from a ``data:`` config block,
    its missing keys filled from the schema (the rules hand the block without
    ``submission_format``, which only the submission reads: not checked here);
    ``labels_required=False`` for an apply run's batch, which may have no labels."""
    from ..config.schema import validate_config

    data = {"submission_format": None, **data_cfg}
    return load_sample_sheet(validate_config({"data": data, "workflow": {"shards": 1}}),
                             labels_required=labels_required)


# --- the labelled samples as their own artefact ---------------------------------------------
# Training, folds and the fitted members read only the labelled samples. Handing them over
# as a file written from a rule's params (not from metadata.csv, whose mtime changes when
# unlabelled runs are added) means that such an edit re-runs nothing that trains.
SHEET_INTERNAL_COLUMNS = ("features_path", "md5", "labelled", "shard")


def labelled_table(sheet: pd.DataFrame) -> dict[str, Any]:
    """The labelled samples as plain values (a rule param): ``columns`` = sample_id, split,
    the metadata columns, then the labels; ``rows`` in label-table order."""
    labels: pd.DataFrame = sheet.attrs["label_table"]
    meta_cols = [c for c in sheet.columns
                 if c not in SHEET_INTERNAL_COLUMNS and c not in ("sample_id",)]
    meta = sheet.set_index("sample_id").loc[list(labels.index), meta_cols]
    table = pd.concat([meta, labels], axis=1).rename_axis("sample_id").reset_index()
    return {"columns": list(table.columns), "labels": list(labels.columns),
            "rows": [[_plain(v) for v in row] for row in table.itertuples(index=False)]}


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (params are compared by value and stored as text)."""
    return value.item() if hasattr(value, "item") else value


def write_labelled_sheet(table: Mapping[str, Any], out_path: str | os.PathLike[str]) -> int:
    """Write :func:`labelled_table`'s values as Parquet; returns the number of samples."""
    from ..io import write_parquet

    frame = pd.DataFrame(table["rows"], columns=table["columns"])
    write_parquet(out_path, frame)
    return len(frame)


def read_labelled_sheet(path: str | os.PathLike[str], labels: Sequence[str]
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(label table indexed by sample_id, the sheet rows: sample_id, split, metadata)."""
    frame = pd.read_parquet(path)
    missing = [c for c in ("sample_id", "split", *labels) if c not in frame.columns]
    if missing:
        raise InputError(path, f"columns {missing} are missing", "re-run the labelled_sheet "
                         "rule (delete the file)", column=missing[0])
    frame["sample_id"] = frame["sample_id"].astype(str)
    label_table = frame.set_index("sample_id")[list(labels)]
    return label_table, frame.drop(columns=list(labels))
