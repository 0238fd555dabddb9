"""Ingest: parse each raw run file once, validate it, clean it, and cache it as Parquet.

The cached run (the contract in docs/architecture.md) has columns ``time`` float32 (file
units), ``mass`` int16 (rounded m/z), ``intensity`` float32 and, when the layout has one,
``temp`` float32; it is sorted by time and the dropped masses are removed.

Each problem a run file can have is either fatal (an :class:`~spectrovision.errors.InputError`
naming the file, the row and column, and the fix) or tolerated and counted in the run's QC
record, as the ``qc`` config says:

=====================  ========================  =========================================
problem                config                    handling
=====================  ========================  =========================================
missing / empty file   --                        fatal
missing column         --                        fatal (lists found and expected columns)
non-numeric cell       --                        fatal (row, column and the bad value)
md5 mismatch           ``check_md5``             fatal when checked (expected vs found)
negative mass          --                        fatal (an m/z cannot be negative)
NaN / inf / empty      ``nonfinite``             ``error`` or ``drop`` (counted)
negative intensity     ``negative_intensity``    ``clip`` to 0, ``keep``, or ``error``
unsorted time          ``unsorted_time``         ``sort`` (counted) or ``error``
fractional m/z         ``fractional_mass``       ``round`` (counted) or ``error``
carrier-gas masses     ``drop_masses``           removed (counted)
m/z above max          ``max_mass``              removed (counted)
=====================  ========================  =========================================

Row numbers in messages are line numbers of the file (the header is line 1).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .sheet import LAYOUT_COLUMNS, RunColumns
from ..errors import InputError
from ..io import atomic_path, write_parquet, write_text

PathLike = str | os.PathLike[str]
LOG = logging.getLogger(__name__)

RUN_COMPRESSION = "zstd"  # chosen by bench/bench_ingest.py (docs/benchmarks.md, Ingest)

QC_DEFAULTS: dict[str, Any] = {
    "check_md5": True,
    "negative_intensity": "clip",
    "fractional_mass": "round",
    "drop_masses": [4],
    "max_mass": 1000,
    "unsorted_time": "sort",
    "nonfinite": "error",
}

# Tolerated problems: the QC count column and what its handling means (for the summary).
QC_COUNTS: dict[str, str] = {
    "nonfinite_dropped": "rows with NaN, inf or an empty cell, dropped (qc.nonfinite: drop)",
    "negative_intensity": "rows with intensity < 0: clipped to 0 (qc.negative_intensity: "
                          "clip) or kept as they are (keep)",
    "unsorted_time": "rows whose time is earlier than the row before; the run was sorted by "
                     "time (qc.unsorted_time: sort)",
    "fractional_mass": "rows with a non-integer m/z, rounded to the nearest integer "
                       "(qc.fractional_mass: round); normal for GC-MS (Mars-2) runs",
    "dropped_mass": "rows at an m/z listed in qc.drop_masses (carrier gas), removed",
    "above_max_mass": "rows with m/z above qc.max_mass, removed",
}

QC_SCHEMA = pa.schema(
    [("sample_id", pa.string()), ("n_rows_raw", pa.int64()), ("n_rows", pa.int64())]
    + [(name, pa.int64()) for name in QC_COUNTS]
    + [("md5_ok", pa.bool_()), ("md5", pa.string()), ("sha256", pa.string())]
)


def qc_settings(qc_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The qc config with every default filled in."""
    return {**QC_DEFAULTS, **(qc_cfg or {})}


def read_raw_bytes(path: Path, kind: str = "run file") -> bytes:
    """The file's bytes; a missing or 0-byte file is an InputError (``kind`` names the
    file in the message: ``run file``, ``image file``)."""
    if not path.is_file():
        raise InputError(path, f"{kind} not found",
                         "check features_path in the metadata and that the file was copied "
                         "completely into data.dir")
    data = path.read_bytes()
    if not data or data.isspace():  # = not data.strip(), without copying the file
        raise InputError(path, f"{kind} is empty (0 bytes)",
                         "re-export or re-download this run, or remove the sample from the "
                         "metadata")
    return data


def check_md5(path: Path, data: bytes, expected: str, found: str | None = None) -> str:
    """The file's md5 (``found``, when already computed); a mismatch with ``expected`` is an
    InputError."""
    found = found or hashlib.md5(data).hexdigest()
    if found != expected.strip().lower():
        raise InputError(path, f"md5 checksum mismatch: expected {expected} (metadata "
                         f"features_md5_hash), found {found}",
                         "the file is corrupt or not the one the metadata names: download or "
                         "copy it again, or, if you changed it on purpose, update "
                         "features_md5_hash (or set qc.check_md5: false)")
    return found


def file_digests(data: bytes) -> tuple[str, str]:
    """md5 and sha256 (hex) of a file's bytes."""
    return hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()


def header_columns(data: bytes) -> list[str]:
    """Column names on the first line of a CSV."""
    end = data.find(b"\n")
    first = data[:end if end >= 0 else len(data)].decode("utf-8-sig", errors="replace").strip()
    return [name.strip().strip('"') for name in first.split(",")]


def wanted_columns(columns: RunColumns) -> dict[str, str]:
    """Canonical name (time, temp, mass, intensity) -> column name in the file."""
    names = {"time": columns.time, "mass": columns.mass, "intensity": columns.intensity}
    if columns.temp is not None:
        names["temp"] = columns.temp
    return names


def check_columns(path: Path, found: Sequence[str], columns: RunColumns) -> None:
    """Every expected column is in the header, else an InputError naming found vs expected."""
    expected = list(wanted_columns(columns).values())
    missing = [name for name in expected if name not in found]
    if not missing:
        return
    hint = ""
    for layout, names in LAYOUT_COLUMNS.items():
        layout_names = [n for n in names.values() if n is not None]
        if layout != "generic" and set(layout_names) <= set(found):
            hint = f" (the columns look like the {layout} layout: set data.layout: {layout})"
            break
    raise InputError(path, f"column(s) {missing} not found: the file has columns {list(found)}, "
                     f"expected {expected}", "rename the columns in the file, or name the file's "
                     f"columns in data.columns{hint}", row=1, column=missing[0])


def parse_csv(path: Path, data: bytes, names: Iterable[str]) -> pa.Table:
    """Parse the named columns as float64 with pyarrow; a non-numeric cell is an InputError."""
    names = list(names)
    convert = pacsv.ConvertOptions(column_types={n: pa.float64() for n in names},
                                   include_columns=names)
    try:
        return pacsv.read_csv(pa.BufferReader(data), convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise_bad_cell(path, data, names, exc)
        raise  # unreachable: raise_bad_cell always raises


def raise_bad_cell(path: Path, data: bytes, names: Sequence[str], exc: Exception) -> None:
    """Find the first non-numeric cell (slow path, only after pyarrow refused the file)."""
    try:
        raw = pacsv.read_csv(pa.BufferReader(data), convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, include_columns=names))
    except pa.ArrowInvalid as exc2:  # malformed line: wrong number of fields, etc.
        raise InputError(path, f"the file is not a well-formed CSV ({exc2})",
                         "fix or re-export the file: every line needs one value per column"
                         ) from None
    for name in names:
        text = raw.column(name).to_pandas()
        parsed = pd.to_numeric(text, errors="coerce")
        bad = parsed.isna() & text.notna() & ~text.str.strip().str.lower().isin(
            ["", "nan", "na", "n/a", "null", "-nan", "#n/a", "none"])
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise InputError(path, f"non-numeric value {text.iloc[row]!r}",
                             "correct or remove that value (numbers only; write empty or "
                             "NaN for a missing value)", row=row + 2, column=name)
    raise InputError(path, f"could not parse the file ({exc})",
                     "check that it is a comma-separated file with a header line") from None


def first_row(mask: np.ndarray) -> int:
    """The file line of the first True in a row mask (header is line 1)."""
    return int(np.flatnonzero(mask)[0]) + 2


def nonfinite_rows(path: Path, arrays: Mapping[str, np.ndarray], file_names: Mapping[str, str],
                   how: str) -> np.ndarray:
    """Row mask of NaN/inf/empty cells; an InputError when ``how`` is ``error`` naming the
    first such row of the file (and its first such column) and the count of such rows."""
    masks = {key: ~np.isfinite(values) for key, values in arrays.items()}
    bad = np.logical_or.reduce(list(masks.values()))
    if how == "error" and bad.any():
        row = int(np.flatnonzero(bad)[0])
        key = next(k for k, mask in masks.items() if mask[row])
        raise InputError(path, f"{int(bad.sum())} row(s) with a NaN, inf or empty value, the "
                         f"first is {arrays[key][row]!r}", "fill in or remove those rows, or "
                         "set qc.nonfinite: drop to drop them", row=row + 2,
                         column=file_names[key])
    return bad


def to_arrays(table: pa.Table, names: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Canonical name -> float64 numpy array (nulls become NaN)."""
    out = {}
    for key, name in names.items():
        column = table.column(name)
        out[key] = column.to_numpy() if column.null_count == 0 else \
            column.fill_null(np.nan).to_numpy()
    return out


def clean_intensity(path: Path, intensity: np.ndarray, column: str, how: str
                    ) -> tuple[np.ndarray, int]:
    """Handle negative intensities per ``qc.negative_intensity``; return (values, count)."""
    negative = intensity < 0
    n_negative = int(negative.sum())
    if n_negative and how == "error":
        raise InputError(path, f"{n_negative} negative intensities, the first is "
                         f"{intensity[negative][0]!r}", "set qc.negative_intensity: clip (to 0) "
                         "or keep", row=first_row(negative), column=column)
    if n_negative and how == "clip":
        intensity = np.maximum(intensity, 0.0)
    return intensity, n_negative


def round_masses(path: Path, mass: np.ndarray, column: str, how: str
                 ) -> tuple[np.ndarray, int]:
    """Round m/z to integers per ``qc.fractional_mass``; return (rounded float64, count)."""
    if mass.size and mass.min() < 0:
        negative = mass < 0
        raise InputError(path, f"negative m/z {mass[negative][0]!r}", "an m/z cannot be "
                         "negative: check the column mapping (data.columns) and the file",
                         row=first_row(negative), column=column)
    rounded = np.rint(mass)
    fractional = rounded != mass
    n_fractional = int(fractional.sum())
    if n_fractional and how == "error":
        raise InputError(path, f"{n_fractional} fractional m/z values, the first is "
                         f"{mass[fractional][0]!r}", "set qc.fractional_mass: round",
                         row=first_row(fractional), column=column)
    return rounded, n_fractional


def time_order(path: Path, time: np.ndarray, column: str, how: str
               ) -> tuple[np.ndarray | None, int]:
    """Indices that sort by time (None when already sorted) and the count of out-of-order rows."""
    backwards = time[1:] < time[:-1]
    n_backwards = int(backwards.sum())
    if not n_backwards:
        return None, 0
    if how == "error":
        row = int(np.flatnonzero(backwards)[0]) + 1
        raise InputError(path, f"{n_backwards} rows go back in time, the first is time "
                         f"{time[row]!r} after {time[row - 1]!r}",
                         "sort the file by time, or set qc.unsorted_time: sort",
                         row=row + 2, column=column)
    return np.argsort(time, kind="stable"), n_backwards


def ingest_run(path: PathLike, columns: RunColumns, qc_cfg: Mapping[str, Any] | None = None,
               expected_md5: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read, validate and clean one raw run file.

    Returns the cleaned run (the cached-run contract: ``time``, ``mass`` int16,
    ``intensity``, optional ``temp``; sorted by time) and its QC record (``n_rows_raw``,
    ``n_rows``, one count per :data:`QC_COUNTS` key, ``md5_ok`` (None = not checked),
    ``md5``, ``sha256`` of the raw bytes). Fatal problems raise InputError.
    """
    path = Path(path)
    qc = qc_settings(qc_cfg)
    data = read_raw_bytes(path)
    expected_md5 = expected_md5 if qc["check_md5"] else None
    file_names = wanted_columns(columns)
    with ThreadPoolExecutor(max_workers=1) as pool:  # hashlib frees the GIL: hash while parsing
        digests = pool.submit(file_digests, data)
        try:
            check_columns(path, header_columns(data), columns)
            table = parse_csv(path, data, file_names.values())
        except InputError:  # a checksum mismatch explains a bad file: report that first
            if expected_md5:
                check_md5(path, data, expected_md5, found=digests.result()[0])
            raise
        md5, sha256 = digests.result()
    md5_ok: bool | None = None
    if expected_md5:
        check_md5(path, data, expected_md5, found=md5)
        md5_ok = True
    if table.num_rows == 0:
        raise InputError(path, "run file has a header but no data rows",
                         "re-export this run, or remove the sample from the metadata")
    arrays = to_arrays(table, file_names)
    record: dict[str, Any] = {"n_rows_raw": table.num_rows}
    bad = nonfinite_rows(path, arrays, file_names, qc["nonfinite"])
    record["nonfinite_dropped"] = int(bad.sum())
    if record["nonfinite_dropped"]:
        arrays = {key: values[~bad] for key, values in arrays.items()}
    arrays["intensity"], record["negative_intensity"] = clean_intensity(
        path, arrays["intensity"], columns.intensity, qc["negative_intensity"])
    arrays["mass"], record["fractional_mass"] = round_masses(
        path, arrays["mass"], columns.mass, qc["fractional_mass"])
    order, record["unsorted_time"] = time_order(path, arrays["time"], columns.time,
                                                qc["unsorted_time"])
    dropped = np.isin(arrays["mass"], np.asarray(qc["drop_masses"], dtype=np.float64))
    above = (arrays["mass"] > qc["max_mass"]) & ~dropped
    record["dropped_mass"] = int(dropped.sum())
    record["above_max_mass"] = int(above.sum())
    run = cached_run(arrays, ~(dropped | above), order)
    record["n_rows"] = len(run)
    record["md5_ok"] = md5_ok
    record["md5"] = md5
    record["sha256"] = sha256
    return run, record


def cached_run(arrays: Mapping[str, np.ndarray], keep: np.ndarray,
               order: np.ndarray | None) -> pd.DataFrame:
    """The contract's typed table: kept rows, in time order."""
    index = np.flatnonzero(keep) if order is None else order[keep[order]]
    dtypes = {"time": np.float32, "mass": np.int16, "intensity": np.float32, "temp": np.float32}
    return pd.DataFrame({key: arrays[key][index].astype(dtypes[key])
                         for key in ("time", "mass", "intensity", "temp") if key in arrays})


def write_run(path: PathLike, run: pd.DataFrame, compression: str = RUN_COMPRESSION) -> None:
    """Write a cached run atomically as Parquet."""
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pandas(run, preserve_index=False), tmp,
                       compression=compression)


def ingest_shard(records: Sequence[Mapping[str, Any]], out_dir: PathLike, qc_out_path: PathLike,
                 columns: RunColumns, qc_cfg: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Ingest every sample of a shard to ``{out_dir}/{sample_id}.parquet`` and write the
    shard's QC table (one row per sample) to ``qc_out_path``; return that table.

    ``records`` are sample-sheet rows with ``sample_id``, ``features_path`` and ``md5``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for rec in records:
        expected = rec.get("md5")
        expected = expected if isinstance(expected, str) and expected else None
        try:
            run, qc_record = ingest_run(rec["features_path"], columns, qc_cfg, expected)
        except InputError as exc:  # into the job's log too, not only the traceback
            LOG.error("sample %s: %s", rec["sample_id"], exc)
            raise
        write_run(out_dir / f"{rec['sample_id']}.parquet", run)
        rows.append({"sample_id": str(rec["sample_id"]), **qc_record})
    table = qc_table(rows)
    write_parquet(qc_out_path, table, schema=QC_SCHEMA)
    return table


def qc_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema = QC_SCHEMA
             ) -> pd.DataFrame:
    """QC records as a table with the columns of ``schema`` (nullable md5_ok)."""
    table = pd.DataFrame(list(rows), columns=schema.names)
    table["md5_ok"] = table["md5_ok"].astype("boolean")
    return table


def read_qc_tables(tables: Iterable[PathLike | pd.DataFrame], schema: pa.Schema = QC_SCHEMA
                   ) -> pd.DataFrame:
    """Concatenate shard QC tables (paths or frames), sorted by sample_id (none: an empty
    table with the columns of ``schema``)."""
    frames = [t if isinstance(t, pd.DataFrame) else pd.read_parquet(t) for t in tables]
    frames = [f for f in frames if len(f)]
    if not frames:
        return qc_table([], schema)
    qc = pd.concat(frames, ignore_index=True)
    return qc.sort_values("sample_id", kind="stable").reset_index(drop=True)


def summarize_qc(shard_tables: Iterable[PathLike | pd.DataFrame],
                 sheet_findings: Mapping[str, Sequence[str]] | None = None,
                 n_worst: int = 5) -> tuple[pd.DataFrame, str]:
    """All shards' QC as one table and a readable Markdown summary: totals per problem
    kind, the samples most affected, what each handling means, and the sample-sheet
    findings (e.g. val samples without labels) passed in ``sheet_findings``."""
    qc = read_qc_tables(shard_tables)
    lines = ["# Ingest QC summary", "",
             f"{len(qc)} runs ingested: {int(qc['n_rows_raw'].sum()):,} rows read, "
             f"{int(qc['n_rows'].sum()):,} kept.", ""]
    lines += md5_lines(qc) + problem_lines(qc) + worst_lines(qc, n_worst)
    lines += sheet_lines(sheet_findings or {})
    return qc, "\n".join(lines).rstrip() + "\n"


def md5_lines(qc: pd.DataFrame) -> list[str]:
    checked = int(qc["md5_ok"].fillna(False).astype(bool).sum())
    return [f"Checksums: {checked} of {len(qc)} runs matched features_md5_hash; "
            f"{len(qc) - checked} had none given or were not checked (qc.check_md5). "
            "A mismatch stops ingest.", ""]


def problem_lines(qc: pd.DataFrame) -> list[str]:
    lines = ["## Problems found and how they were handled", "",
             "| problem | rows | runs affected | handling |", "|---|---:|---:|---|"]
    for name, meaning in QC_COUNTS.items():
        counts = qc[name].astype("int64")
        lines.append(f"| {name} | {int(counts.sum()):,} | {int((counts > 0).sum())} | "
                     f"{meaning} |")
    return lines + [""]


def worst_lines(qc: pd.DataFrame, n_worst: int) -> list[str]:
    """The runs that lost the largest share of their rows, and the most-clipped runs."""
    if qc.empty:
        return []
    lines = ["## Runs most affected", ""]
    raw = qc["n_rows_raw"].clip(lower=1)
    removed = (qc["n_rows_raw"] - qc["n_rows"]) / raw
    negative = qc["negative_intensity"] / raw
    for title, share in (("share of rows removed", removed),
                         ("share of rows with negative intensity", negative)):
        top = share[share > 0].sort_values(ascending=False, kind="stable").head(n_worst)
        if top.empty:
            lines += [f"- {title}: none", ""]
            continue
        listed = ", ".join(f"{qc['sample_id'].iloc[i]} ({share.iloc[i]:.1%})" for i in top.index)
        lines += [f"- {title}: {listed}", ""]
    return lines


def sheet_lines(findings: Mapping[str, Sequence[str]]) -> list[str]:
    lines = ["## Sample sheet", ""]
    if not any(findings.values()):
        return lines + ["No findings.", ""]
    for kind, ids in findings.items():
        shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
        lines.append(f"- {kind}: {len(ids)} sample(s){': ' + shown if ids else ''}")
    return lines + [""]


Summarizer = Callable[[Iterable[PathLike | pd.DataFrame], Mapping[str, Sequence[str]] | None],
                      tuple[pd.DataFrame, str]]


def write_qc_summary(shard_tables: Iterable[PathLike | pd.DataFrame], qc_path: PathLike,
                     summary_path: PathLike,
                     sheet_findings: Mapping[str, Sequence[str]] | None = None, *,
                     summarize: Summarizer = summarize_qc, schema: pa.Schema = QC_SCHEMA
                     ) -> None:
    """Write the combined QC table (Parquet, ``schema``) and the Markdown summary, both
    made by ``summarize`` (a layout's summariser: runs :func:`summarize_qc`, images
    :func:`~spectrovision.data.images.summarize_image_qc`)."""
    qc, text = summarize(shard_tables, sheet_findings)
    write_parquet(qc_path, qc, schema=schema)
    write_text(summary_path, text)
