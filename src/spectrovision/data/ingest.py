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
missing / empty file   --                        fatal (a folder: "is a directory")
not a text CSV         --                        fatal (gzip, zip, UTF-16, binary: the kind,
                                                 never the bytes)
missing column         --                        fatal (lists found and expected columns;
                                                 hints at ``;``/tab separators)
spaces in header       --                        fatal (``time, mass``: names the column)
column name twice      --                        fatal (names it and both positions)
ragged line            --                        fatal (names the line and its field count)
non-numeric cell       --                        fatal (row, column and the bad value)
md5 mismatch           ``check_md5``             fatal when checked (expected vs found)
negative mass          --                        fatal (an m/z cannot be negative)
NaN / inf / empty      ``nonfinite``             ``error`` or ``drop`` (counted); checked
                                                 after the cast to float32, so 1e39 counts
negative intensity     ``negative_intensity``    ``clip`` to 0, ``keep``, or ``error``
unsorted time          ``unsorted_time``         ``sort`` (counted) or ``error``
fractional m/z         ``fractional_mass``       ``round`` (counted), ``error``, or
                                                 ``drop_band``: rows whose fractional part
                                                 lies in ``fractional_band`` are removed,
                                                 the others rounded (all counted)
carrier-gas masses     ``drop_masses``           removed (counted)
m/z above max          ``max_mass``              removed (counted)
too few rows left      ``min_rows``              fatal (never an all-zero image)
one time for all rows  --                        fatal (a single scan: one image column)
=====================  ========================  =========================================

Row numbers in messages are line numbers of the file (the header is line 1). The table
of every kind of bad input, sample sheet included, is docs/input-errors.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .layouts import LAYOUTS
from .sheet import RunColumns
from .tables import check_separator, check_unique_columns, listed
from ..errors import ConfigError, InputError, shown
from ..io import atomic_path, write_parquet, write_text
from ..provenance.records import provenance_path

PathLike = str | os.PathLike[str]
LOG = logging.getLogger(__name__)

RUN_COMPRESSION = "zstd"  # chosen by bench/bench_ingest.py (docs/benchmarks.md, Ingest)

QC_DEFAULTS: dict[str, Any] = {
    "check_md5": True,
    "negative_intensity": "clip",
    "fractional_mass": "round",
    "fractional_band": [0.3, 0.7],
    "drop_masses": [4],
    "max_mass": 1000,
    "unsorted_time": "sort",
    "nonfinite": "error",
    "min_rows": 2,
}

# Tolerated problems: the QC count column and what its handling means (for the summary).
QC_COUNTS: dict[str, str] = {
    "nonfinite_dropped": "rows with NaN, inf or an empty cell, dropped (qc.nonfinite: drop)",
    "negative_intensity": "rows with intensity < 0: clipped to 0 (qc.negative_intensity: "
                          "clip) or kept as they are (keep)",
    "unsorted_time": "rows whose time is earlier than the row before; the run was sorted by "
                     "time (qc.unsorted_time: sort)",
    "fractional_mass": "rows with a non-integer m/z, rounded to the nearest integer "
                       "(qc.fractional_mass: round; under drop_band those whose fractional "
                       "part lies in qc.fractional_band are removed instead); normal for "
                       "GC-MS (Mars-2) runs",
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
    if path.is_dir():
        raise InputError(path, f"{kind} is a directory, not a file",
                         "point features_path at the sample's file inside that folder")
    if not path.is_file():
        raise InputError(path, f"{kind} not found",
                         "check features_path in the metadata and that the file was copied "
                         "completely into data.dir")
    try:
        data = path.read_bytes()
    except OSError as exc:  # permission denied, a folder, an unreadable mount, ...
        raise InputError(path, f"{kind} cannot be read ({exc.strerror or exc})",
                         "check that the file is readable by you (permissions) and is a "
                         "plain file") from None
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


# Leading bytes of files that are not text, and what to tell the user they are.
NOT_TEXT_MAGIC: dict[bytes, str] = {
    b"\x1f\x8b": "gzip-compressed data: decompress it (gunzip)",
    b"PK\x03\x04": "a zip archive: extract the CSV from it",
    b"BZh": "bzip2-compressed data: decompress it (bunzip2)",
    b"\xfd7zXZ\x00": "xz-compressed data: decompress it (unxz)",
    b"\xff\xfe": "UTF-16 text: save it as UTF-8",
    b"\xfe\xff": "UTF-16 text: save it as UTF-8",
    b"PAR1": "a Parquet file: write the run as CSV",
}
TEXT_PROBE_BYTES = 4096


def check_text(path: Path, data: bytes) -> None:
    """A run file is UTF-8 text, else an InputError saying what it looks like (the bytes are
    never shown: they would flood the message and the job log)."""
    head = data[:TEXT_PROBE_BYTES]
    kind = next((what for magic, what in NOT_TEXT_MAGIC.items() if head.startswith(magic)),
                None)
    if kind is None and b"\x00" in head:
        kind = ("UTF-16 text: save it as UTF-8" if head[1::2].count(0) > len(head) // 4
                or head[0::2].count(0) > len(head) // 4 else "binary data")
    if kind is None:
        end = head.find(b"\n")
        try:
            head[:end if end >= 0 else len(head)].decode("utf-8-sig")
        except UnicodeDecodeError:
            kind = "not UTF-8 text (its header line is not UTF-8): save it as UTF-8"
    if kind is not None:
        what, _, todo = kind.partition(": ")
        raise InputError(path, f"not a text CSV: the file is {what}",
                         f"{todo + ', or ' if todo else ''}point features_path at the run's "
                         "comma-separated UTF-8 text file", row=1)


def header_line(data: bytes) -> str:
    """The first line of a CSV (BOM and line end removed)."""
    end = data.find(b"\n")
    return data[:end if end >= 0 else len(data)].decode("utf-8-sig", errors="replace")


def header_columns(data: bytes) -> list[str]:
    """Column names on the first line of a CSV."""
    return [name.strip().strip('"') for name in header_line(data).strip().split(",")]


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
    check_separator(path, found, expected, "run files")
    hint = ""
    for layout in LAYOUTS:
        names = LAYOUTS.get(layout).columns  # None: the layout names no columns of its own
        layout_names = [n for n in (names or {}).values() if n is not None]
        if names is not None and set(layout_names) <= set(found):
            hint = f" (the columns look like the {layout} layout: set data.layout: {layout})"
            break
    raise InputError(path, f"column(s) {missing} not found: the file has columns "
                     f"{listed(found)}, expected {expected}", "rename the columns in the file, or "
                     f"name the file's columns in data.columns{hint}", row=1, column=missing[0])


def check_header_spacing(path: Path, data: bytes, columns: RunColumns) -> None:
    """A column name with spaces around it in the header (``time, mass``) is an InputError
    naming it: the parser keeps the spaces, so the column would not be found by name."""
    raw = [name.strip("\r\n").strip('"') for name in header_line(data).split(",")]
    for name in wanted_columns(columns).values():
        if name in raw:
            continue
        spaced = next((r for r in raw if r.strip().strip('"') == name), None)
        if spaced is not None:
            raise InputError(path, f"header cell {spaced!r} has spaces around the column name "
                             f"{name!r}", "write the header without spaces around the names "
                             f"(e.g. {','.join(wanted_columns(columns).values())})",
                             row=1, column=name)


def parse_csv(path: Path, data: bytes, names: Iterable[str]) -> pa.Table:
    """Parse the named columns as float64 with pyarrow; a non-numeric cell is an InputError."""
    names = list(names)
    convert = pacsv.ConvertOptions(column_types={n: pa.float64() for n in names},
                                   include_columns=names)
    try:
        return pacsv.read_csv(pa.BufferReader(data), convert_options=convert)
    except pa.ArrowException as exc:
        raise_bad_cell(path, data, names, exc)
        raise  # unreachable: raise_bad_cell always raises


def ragged_line(data: bytes) -> tuple[int, int, int] | None:
    """(line, its number of fields, the header's) of the first non-empty line whose number
    of fields differs from the header's; None when every line has as many."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"), newline=""))
    n_header = len(next(reader, []))
    for fields in reader:
        if fields and len(fields) != n_header:
            return reader.line_num, len(fields), n_header
    return None


def raise_bad_cell(path: Path, data: bytes, names: Sequence[str], exc: Exception) -> None:
    """Find the first non-numeric cell (slow path, only after pyarrow refused the file)."""
    try:
        raw = pacsv.read_csv(pa.BufferReader(data), convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, include_columns=names))
    except pa.ArrowException as exc2:  # malformed line: wrong number of fields, etc.
        ragged = ragged_line(data)
        if ragged is not None:
            line, n_fields, n_header = ragged
            raise InputError(path, f"the file is not a well-formed CSV: line {line} has "
                             f"{n_fields} value(s), the header has {n_header}",
                             "fix or re-export the file: every line needs one value per "
                             "column", row=line) from None
        raise InputError(path, f"the file is not a well-formed CSV ({str(exc2)[:200]})",
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
    raise InputError(path, f"could not parse the file ({str(exc)[:200]})",
                     "check that it is a comma-separated file with a header line") from None


def first_row(mask: np.ndarray) -> int:
    """The file line of the first True in a row mask (header is line 1)."""
    return int(np.flatnonzero(mask)[0]) + 2


CACHED_FLOAT = np.float32  # the cached dtype of time, intensity and temp


def cached_finite(key: str, values: np.ndarray) -> np.ndarray:
    """Mask of values that stay finite in the cache: after the cast to float32 for time,
    intensity and temp (1e39 is finite as float64 but inf as float32); mass as read."""
    if key == "mass":
        return np.isfinite(values)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.isfinite(values.astype(CACHED_FLOAT))


def nonfinite_rows(path: Path, arrays: Mapping[str, np.ndarray], file_names: Mapping[str, str],
                   how: str) -> np.ndarray:
    """Row mask of NaN/inf/empty cells and of values beyond the cached float32's range; an
    InputError when ``how`` is ``error`` naming the first such row of the file (and its
    first such column) and the count of such rows."""
    masks = {key: ~cached_finite(key, values) for key, values in arrays.items()}
    bad = np.logical_or.reduce(list(masks.values()))
    if how == "error" and bad.any():
        row = int(np.flatnonzero(bad)[0])
        key = next(k for k, mask in masks.items() if mask[row])
        value = arrays[key][row]
        beyond = (f", too large for the cache's float32 (largest "
                  f"{float(np.finfo(CACHED_FLOAT).max):.4g})" if np.isfinite(value) else "")
        raise InputError(path, f"{int(bad.sum())} row(s) with a NaN, inf or empty value, the "
                         f"first is {shown(value)}{beyond}", "fill in, correct or remove those "
                         "rows, or set qc.nonfinite: drop to drop them", row=row + 2,
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
                         f"{shown(intensity[negative][0])}", "set qc.negative_intensity: clip (to 0) "
                         "or keep", row=first_row(negative), column=column)
    if n_negative and how == "clip":
        intensity = np.maximum(intensity, 0.0)
    return intensity, n_negative


def round_masses(path: Path, mass: np.ndarray, column: str, how: str,
                 band: Sequence[float] = (0.3, 0.7)) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Round m/z to integers per ``qc.fractional_mass``; return (rounded float64, count of
    non-integer m/z, and under ``drop_band`` the mask of rows whose fractional part lies in
    ``band = [lo, hi]`` (inclusive), to be removed; else None)."""
    if mass.size and mass.min() < 0:
        negative = mass < 0
        raise InputError(path, f"negative m/z {shown(mass[negative][0])}", "an m/z cannot be "
                         "negative: check the column mapping (data.columns) and the file",
                         row=first_row(negative), column=column)
    rounded = np.rint(mass)
    fractional = rounded != mass
    n_fractional = int(fractional.sum())
    if n_fractional and how == "error":
        raise InputError(path, f"{n_fractional} fractional m/z values, the first is "
                         f"{shown(mass[fractional][0])}", "set qc.fractional_mass: round",
                         row=first_row(fractional), column=column)
    if how != "drop_band":
        return rounded, n_fractional, None
    if not 0 < band[0] <= band[1] < 1:
        raise ConfigError(f"qc.fractional_band must be [lo, hi] with 0 < lo <= hi < 1, got "
                          f"{list(band)}")
    part = mass - np.floor(mass)
    return rounded, n_fractional, fractional & (part >= band[0]) & (part <= band[1])


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
                         f"{shown(time[row])} after {shown(time[row - 1])}",
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
    file_names = wanted_columns(columns)

    def parse() -> pa.Table:
        check_text(path, data)
        check_header_spacing(path, data, columns)
        check_unique_columns(path, header_columns(data))
        check_columns(path, header_columns(data), columns)
        return parse_csv(path, data, file_names.values())

    table, digests = parse_with_digests(path, data, expected_md5 if qc["check_md5"] else None,
                                        parse)
    if table.num_rows == 0:
        raise InputError(path, "run file has a header but no data rows",
                         "re-export this run, or remove the sample from the metadata")
    rows = clean_rows(path, to_arrays(table, file_names), file_names, qc)
    run = cached_run(rows.arrays, rows.keep, rows.order)
    record = finish_record(path, {"n_rows_raw": table.num_rows, **rows.counts}, len(run),
                           digests, qc)
    check_scans(path, run["time"].to_numpy(), columns.time)
    return run, record


T = TypeVar("T")


@dataclass(frozen=True)
class Digests:
    """md5 and sha256 of a run file's bytes; ``md5_ok`` None when not checked."""

    md5: str
    sha256: str
    md5_ok: bool | None


def parse_with_digests(path: Path, data: bytes, expected_md5: str | None,
                       parse: Callable[[], T]) -> tuple[T, Digests]:
    """``parse()`` while the file's digests are computed beside it (hashlib frees the GIL);
    when parsing fails and the md5 does not match ``expected_md5``, the mismatch is reported
    instead (it explains a bad file). A mismatch after a good parse is an InputError too."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        digests = pool.submit(file_digests, data)
        try:
            parsed = parse()
        except InputError:  # a checksum mismatch explains a bad file: report that first
            if expected_md5:
                check_md5(path, data, expected_md5, found=digests.result()[0])
            raise
        md5, sha256 = digests.result()
    if expected_md5:
        check_md5(path, data, expected_md5, found=md5)
    return parsed, Digests(md5, sha256, True if expected_md5 else None)


@dataclass(frozen=True)
class CleanRows:
    """What :func:`clean_rows` made of a run's rows: the arrays (non-finite rows dropped,
    intensities clipped, masses rounded), the rows to keep, the time order (None: already
    sorted) and the QC counts of :data:`QC_COUNTS`."""

    arrays: dict[str, np.ndarray]
    keep: np.ndarray
    order: np.ndarray | None
    counts: dict[str, int]


def clean_rows(path: Path, arrays: Mapping[str, np.ndarray], file_names: Mapping[str, str],
               qc: Mapping[str, Any], lines: np.ndarray | None = None) -> CleanRows:
    """Validate and clean a run's rows (canonical name -> float64 array; other keys are
    carried along) as the ``qc`` settings say. ``lines``: the file line of each row that an
    error names (default: row i is line i + 2, the header being line 1)."""
    arrays = dict(arrays)
    lines = np.arange(len(arrays["time"])) + 2 if lines is None else lines
    checked = {key: arrays[key] for key in file_names}
    bad = at_lines(lines, nonfinite_rows, path, checked, file_names, qc["nonfinite"])
    counts = {"nonfinite_dropped": int(bad.sum())}
    if counts["nonfinite_dropped"]:
        arrays = {key: values[~bad] for key, values in arrays.items()}
        lines = lines[~bad]
    arrays["intensity"], counts["negative_intensity"] = at_lines(
        lines, clean_intensity, path, arrays["intensity"], file_names["intensity"],
        qc["negative_intensity"])
    arrays["mass"], counts["fractional_mass"], in_band = at_lines(
        lines, round_masses, path, arrays["mass"], file_names["mass"], qc["fractional_mass"],
        qc["fractional_band"])
    order, counts["unsorted_time"] = at_lines(lines, time_order, path, arrays["time"],
                                              file_names["time"], qc["unsorted_time"])
    dropped = np.isin(arrays["mass"], np.asarray(qc["drop_masses"], dtype=np.float64))
    above = (arrays["mass"] > qc["max_mass"]) & ~dropped
    removed = dropped | above
    if in_band is not None:  # band rows count as fractional_mass, not as dropped/above
        dropped &= ~in_band
        above &= ~in_band
        removed |= in_band
    counts["dropped_mass"] = int(dropped.sum())
    counts["above_max_mass"] = int(above.sum())
    return CleanRows(arrays, ~removed, order, counts)


def at_lines(lines: np.ndarray, check: Callable[..., T], *args: Any) -> T:
    """``check(*args)``, whose InputError names row i as line i + 2, with that error naming
    ``lines[i]`` instead (the file line, after rows were dropped)."""
    try:
        return check(*args)
    except InputError as exc:
        if exc.row is None or not 0 <= exc.row - 2 < len(lines):
            raise
        raise InputError(exc.path, exc.problem, exc.fix, row=int(lines[exc.row - 2]),
                         column=exc.column) from None


def finish_record(path: Path, counts: Mapping[str, Any], n_rows: int, digests: Digests,
                  qc: Mapping[str, Any]) -> dict[str, Any]:
    """The QC record of a cleaned run: ``counts``, ``n_rows`` and the digests; too few rows
    left is an InputError (:func:`check_min_rows`)."""
    record = {**counts, "n_rows": n_rows}
    check_min_rows(path, record, int(qc["min_rows"]))
    return {**record, "md5_ok": digests.md5_ok, "md5": digests.md5, "sha256": digests.sha256}


def check_min_rows(path: Path, record: Mapping[str, Any], min_rows: int) -> None:
    """A run with fewer than ``min_rows`` rows left after cleaning is an InputError saying
    where its rows went (it would render as an (almost) all-zero image)."""
    if record["n_rows"] >= min_rows:
        return
    raise InputError(path, f"only {record['n_rows']} row(s) left after cleaning, fewer than "
                     f"qc.min_rows = {min_rows} ({record['n_rows_raw']} read, "
                     f"{record['nonfinite_dropped']} non-finite dropped, "
                     f"{record['dropped_mass']} at qc.drop_masses, {record['above_max_mass']} "
                     "above qc.max_mass)", "check the file and the qc settings, remove the "
                     "sample from the metadata, or lower qc.min_rows")


def check_scans(path: Path, time: np.ndarray, column: str) -> None:
    """A run whose kept rows (two or more; fewer is ``qc.min_rows``' business) all share one
    time, a single scan or a constant time column, is an InputError: it would render as one
    column of the image, the rest zero. ``time`` is sorted, so its ends tell."""
    if len(time) < 2 or time[0] != time[-1]:
        return
    raise InputError(path, f"all {len(time)} rows have the same time ({shown(time[0])}): the "
                     "run is a single scan and would fill one column of the image",
                     "check that the time column is the time of each scan (data.columns.time "
                     "names it), re-export the run with its scan times, or remove the sample "
                     "from the metadata", column=column)


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
    return ingest_records(records, out_dir, qc_out_path,
                          lambda path, md5: ingest_run(path, columns, qc_cfg, md5))


RunReader = Callable[[str, str | None], tuple[Any, dict[str, Any]]]


def ingest_records(records: Sequence[Mapping[str, Any]], out_dir: PathLike,
                   qc_out_path: PathLike, read: RunReader, schema: pa.Schema = QC_SCHEMA,
                   write: Callable[[Path, Any], None] = write_run, suffix: str = ".parquet"
                   ) -> pd.DataFrame:
    """:func:`ingest_shard` with the run reader ``read(features_path, expected md5 or
    None) -> (cached run, QC record)`` and the QC table's ``schema`` given; each cached run
    is ``write(out_dir / f"{sample_id}{suffix}", run)`` (image files: decoded pixels as
    NPY)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for rec in records:
        expected = rec.get("md5")
        expected = expected if isinstance(expected, str) and expected else None
        try:
            run, qc_record = read(rec["features_path"], expected)
        except InputError as exc:  # into the job's log too, not only the traceback
            LOG.error("sample %s: %s", rec["sample_id"], exc)
            discard_stale_qc(out_dir, qc_out_path)
            raise
        write(out_dir / f"{rec['sample_id']}{suffix}", run)
        rows.append({"sample_id": str(rec["sample_id"]), **qc_record})
    table = qc_table(rows, schema)
    write_parquet(qc_out_path, table, schema=schema)
    return table


# The combined QC outputs beside the shard QC tables (the qc_summary rule's outputs).
COMBINED_QC_FILES = ("qc.parquet", "qc_summary.md")


def discard_stale_qc(out_dir: PathLike, qc_out_path: PathLike) -> list[Path]:
    """After a failed ingest: remove what earlier runs left that would now describe other
    data (the combined QC table and summary beside ``qc_out_path``, whose "No findings" no
    longer holds) and the provenance sidecars of this shard's outputs and of those files
    (Snakemake deletes a failed job's outputs, not their sidecars). Returns what it removed."""
    qc_dir = Path(qc_out_path).parent
    stale = [qc_dir / name for name in COMBINED_QC_FILES]
    stale += [provenance_path(p) for p in (out_dir, qc_out_path, *stale)]
    removed = [p for p in stale if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
        LOG.info("removed stale %s (ingest failed)", path)
    return removed


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
                 n_worst: int = 5, *, counts: Mapping[str, str] = QC_COUNTS,
                 schema: pa.Schema = QC_SCHEMA) -> tuple[pd.DataFrame, str]:
    """All shards' QC as one table and a readable Markdown summary: totals per problem
    kind, the samples most affected, what each handling means, and the sample-sheet
    findings (e.g. val samples without labels) passed in ``sheet_findings``. ``counts``:
    the QC count columns and their meaning, ``schema``: the tables' (a layout with more
    counts passes its own)."""
    qc = read_qc_tables(shard_tables, schema)
    lines = ["# Ingest QC summary", "",
             f"{len(qc)} runs ingested: {int(qc['n_rows_raw'].sum()):,} rows read, "
             f"{int(qc['n_rows'].sum()):,} kept.", ""]
    lines += md5_lines(qc) + problem_lines(qc, counts) + worst_lines(qc, n_worst)
    lines += sheet_lines(sample_findings(qc, sheet_findings))
    return qc, "\n".join(lines).rstrip() + "\n"


def md5_lines(qc: pd.DataFrame) -> list[str]:
    checked = int(qc["md5_ok"].fillna(False).astype(bool).sum())
    return [f"Checksums: {checked} of {len(qc)} runs matched features_md5_hash; "
            f"{len(qc) - checked} had none given or were not checked (qc.check_md5). "
            "A mismatch stops ingest.", ""]


def problem_lines(qc: pd.DataFrame, counts: Mapping[str, str] = QC_COUNTS) -> list[str]:
    lines = ["## Problems found and how they were handled", "",
             "| problem | rows | runs affected | handling |", "|---|---:|---:|---|"]
    for name, meaning in counts.items():
        per_run = qc[name].astype("int64")
        lines.append(f"| {name} | {int(per_run.sum()):,} | {int((per_run > 0).sum())} | "
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


def sample_findings(qc: pd.DataFrame, sheet_findings: Mapping[str, Sequence[str]] | None
                    ) -> dict[str, list[str]]:
    """The sample-sheet findings plus one per group of samples whose files have the same
    md5 (identical contents under different paths: likely one measurement listed twice,
    which would leak between training folds). Two rows naming the same path are refused
    when the sheet is read (:func:`~spectrovision.data.sheet.require_own_files`)."""
    findings = {kind: list(ids) for kind, ids in (sheet_findings or {}).items()}
    same = qc[qc["md5"].notna() & qc["md5"].duplicated(keep=False)]
    for md5, group in same.groupby("md5", sort=True):
        findings[f"identical files (md5 {md5}): one measurement listed as several samples? "
                 "keep one row, or they leak between folds"] = list(group["sample_id"])
    return findings


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
