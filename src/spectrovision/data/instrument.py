"""Instrument run files (layout ``instrument``): ANDI/AIA netCDF, mzML and JCAMP-DX GC-MS.

Each file's format is told by its content, never its extension (:func:`detect_format`):
``CDF\\x01``/``CDF\\x02`` is netCDF-3 (ANDI/AIA MS), an XML document with an ``<mzML`` or
``<indexedmzML`` element is mzML, text starting with a ``##`` label is JCAMP-DX. A reader per
format (:data:`READERS`) turns the file into its :class:`Scans`; the scans' points then go
through the CSV layouts' validation and cleaning (:func:`~spectrovision.data.ingest.clean_rows`,
the same ``qc:`` settings), the points of one scan that round to the same m/z are summed
(profile spectra give many points per nominal mass), and the run is cached with the same
contract as a CSV run: ``time`` float32 in **minutes**, ``mass`` int16, ``intensity`` float32,
sorted by time.

Libraries: scipy.io's ``netcdf_file`` for ANDI (netCDF-3 classic, which HDF5-based readers
cannot open; scipy is already a dependency), pyteomics' ``mzml.MzML`` (lxml) for mzML, and
the small parser here for JCAMP-DX (no maintained reader exists for its GC-MS pages).

Quirks, each an :class:`~spectrovision.errors.InputError` naming the file and the scan, or a
QC count (:data:`INSTRUMENT_QC_COUNTS`, beside the CSV layouts' counts):

- retention times: ANDI in seconds (its ``units`` attribute when given), mzML in the unit
  of each ``scan start time``, JCAMP-DX in minutes unless ``##UNITS=`` names seconds for T;
- ANDI ``scan_index``/``point_count`` that run past the arrays or overlap: fatal; points
  outside every scan: dropped, counted (``unindexed_points``); mzML ``defaultArrayLength``
  or JCAMP ``##NPOINTS=`` that disagree with the data: fatal;
- profile spectra: counted (``profile_scans``); their points are summed per m/z
  (``merged_points``), as are two centroids of one scan that round to the same m/z;
- empty scans: counted (``empty_scans``), they add no rows;
- ``-9999`` (and JCAMP's ``?``) as a null m/z, intensity or time: the point (or the whole
  scan, for a time) dropped, counted (``null_values``);
- MS2 and higher spectra in mzML: dropped, counted (``ms2_dropped``);
- zlib-compressed and 32/64-bit binary arrays in mzML: decoded by pyteomics.
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .ingest import (NOT_TEXT_MAGIC, QC_COUNTS, QC_SCHEMA, check_scans, clean_rows,
                     finish_record, ingest_records, parse_with_digests, qc_settings, read_raw_bytes,
                     summarize_qc)
from ..errors import InputError

PathLike = str | os.PathLike[str]
LOG = logging.getLogger(__name__)

FORMATS = ("andi", "mzml", "jcamp")
NULL_VALUE = -9999.0  # ANDI's (and many exporters') null
TIME_UNIT = "min"  # the cached runs' time unit
SECONDS_PER = {"second": 1.0, "s": 1.0, "sec": 1.0, "seconds": 1.0, "minute": 60.0,
               "min": 60.0, "minutes": 60.0, "millisecond": 1e-3, "ms": 1e-3, "hour": 3600.0,
               "h": 3600.0}

# Tolerated instrument-file problems: the QC count column and its handling (for the summary).
INSTRUMENT_COUNTS: dict[str, str] = {
    "null_values": "points whose m/z, intensity or scan time is -9999 (or JCAMP-DX '?'), the "
                   "formats' null: dropped",
    "empty_scans": "scans without any point: they add no rows",
    "profile_scans": "scans stored as profile (continuum) spectra: their points are summed "
                     "per rounded m/z (counted in merged_points)",
    "merged_points": "points summed into another point of the same scan and rounded m/z "
                     "(profile spectra; centroids that round to one m/z)",
    "ms2_dropped": "MS2 (and higher) spectra in an mzML file: dropped, MS1 kept",
    "unindexed_points": "ANDI points outside every scan's scan_index .. + point_count: "
                        "dropped",
}
INSTRUMENT_QC_COUNTS: dict[str, str] = {**QC_COUNTS, **INSTRUMENT_COUNTS}
INSTRUMENT_QC_SCHEMA = pa.schema(
    list(QC_SCHEMA) + [("format", pa.string())]
    + [(name, pa.int64()) for name in INSTRUMENT_COUNTS])


@dataclass(frozen=True)
class Scans:
    """One run file as its scans: scan ``i`` (1-based ``i + 1`` in messages) holds the points
    ``offsets[i]:offsets[i + 1]`` of ``mass`` and ``intensity`` and was taken at ``time[i]``
    (minutes). ``names``: what the file calls time, mass and intensity (for messages);
    ``counts``: the reader's QC counts (keys of :data:`INSTRUMENT_COUNTS`)."""

    format: str
    time: np.ndarray
    offsets: np.ndarray
    mass: np.ndarray
    intensity: np.ndarray
    names: Mapping[str, str]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def n_scans(self) -> int:
        return len(self.time)

    def scan_of_points(self) -> np.ndarray:
        """The scan (0-based) of every point."""
        return np.repeat(np.arange(self.n_scans), np.diff(self.offsets))


# --- format detection ------------------------------------------------------------------------
PROBE_BYTES = 4096
FORMAT_NAMES = "ANDI/AIA netCDF (.cdf), mzML or JCAMP-DX"


def detect_format(path: Path, data: bytes) -> str:
    """``andi``, ``mzml`` or ``jcamp``, from the file's first bytes; anything else is an
    InputError saying what the file looks like (never its bytes)."""
    head = data[:PROBE_BYTES]
    if head.startswith((b"CDF\x01", b"CDF\x02")):
        return "andi"
    if head.startswith(b"CDF\x05"):
        raise not_readable(path, "a netCDF-3 file with 64-bit data (CDF-5)",
                           "export it as netCDF-3 classic (ANDI/AIA), e.g. nccopy -k classic")
    if head.startswith(b"\x89HDF"):
        raise not_readable(path, "a netCDF-4/HDF5 file, which ANDI/AIA files are not",
                           "export the run as ANDI/AIA netCDF-3 classic (nccopy -k classic "
                           "converts one), or as mzML")
    for magic, what in NOT_TEXT_MAGIC.items():
        if head.startswith(magic):
            kind, _, todo = what.partition(": ")
            raise not_readable(path, kind, todo or "export the run as " + FORMAT_NAMES)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("<") and re.search(r"<(indexed)?mzML[\s>]", text):
        return "mzml"
    if text.startswith("##"):
        return "jcamp"
    first = text.splitlines()[0] if text.strip() else ""
    looks = ("a CSV table" if first.count(",") >= 2 else
             "XML, but not mzML" if text.startswith("<") else
             "binary data" if "\ufffd" in text or "\x00" in text else "text of another kind")
    raise not_readable(path, looks, "export the run as " + FORMAT_NAMES + " (CSV runs belong "
                       "to the mars2, mars1 or generic layouts)")


def not_readable(path: Path, what: str, fix: str) -> InputError:
    return InputError(path, f"not an instrument run file ({FORMAT_NAMES}): the file is {what}",
                      fix)


# --- ANDI/AIA netCDF ------------------------------------------------------------------------
ANDI_VARIABLES = ("scan_acquisition_time", "scan_index", "point_count", "mass_values",
                  "intensity_values")
ANDI_NAMES = {"time": "scan_acquisition_time", "mass": "mass_values",
              "intensity": "intensity_values"}


def read_andi(path: Path, data: bytes) -> Scans:
    """An ANDI/AIA MS netCDF file (ASTM E2077) read with scipy.io's netcdf_file."""
    from scipy.io import netcdf_file

    try:
        with netcdf_file(io.BytesIO(data), "r", mmap=False) as nc:
            missing = [name for name in ANDI_VARIABLES if name not in nc.variables]
            if missing:
                raise InputError(path, f"netCDF file without the ANDI/AIA MS variable(s) "
                                 f"{missing} (it has {sorted(nc.variables)[:12]})",
                                 "export the run as ANDI/AIA MS (AIA/netCDF export of the "
                                 "data system), not another netCDF product")
            values = {name: nc.variables[name][:].astype(np.float64) for name in ANDI_VARIABLES}
            attributes = {name: {key: getattr(nc.variables[name], key) for key in
                                 ("units", "scale_factor", "add_offset")
                                 if hasattr(nc.variables[name], key)}
                          for name in ANDI_VARIABLES}
            experiment = text_attribute(getattr(nc, "experiment_type", b""))
    except InputError:
        raise
    except (TypeError, ValueError, OSError, IndexError, EOFError, struct.error) as exc:
        raise InputError(path, f"the netCDF file cannot be read ({str(exc)[:200]})",
                         "re-export the run; a truncated copy is a common cause") from None
    return andi_scans(path, values, attributes, experiment)


def text_attribute(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def andi_scans(path: Path, values: Mapping[str, np.ndarray],
               attributes: Mapping[str, Mapping[str, Any]], experiment: str) -> Scans:
    """Check an ANDI file's index against its arrays and make its scans."""
    mass, intensity = values["mass_values"], values["intensity_values"]
    start, count, time = (values[name] for name in ("scan_index", "point_count",
                                                    "scan_acquisition_time"))
    if len(mass) != len(intensity):
        raise InputError(path, f"mass_values has {len(mass)} points, intensity_values "
                         f"{len(intensity)}", "re-export the run: the arrays must be equally "
                         "long", column="intensity_values")
    if not len(start) == len(count) == len(time):
        raise InputError(path, f"scan_index ({len(start)}), point_count ({len(count)}) and "
                         f"scan_acquisition_time ({len(time)}) differ in length",
                         "re-export the run: each scan needs one of each")
    check_andi_index(path, start, count, len(mass))
    start, count = start.astype(np.int64), count.astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(count)])
    counts = {"unindexed_points": len(mass) - int(offsets[-1]),
              "profile_scans": len(time) if "continuum" in experiment.lower() else 0}
    if counts["unindexed_points"] or not np.array_equal(start, offsets[:-1]):
        points = np.repeat(start - offsets[:-1], count) + np.arange(offsets[-1])
        mass, intensity = mass[points], intensity[points]
    mass = scaled(mass, attributes["mass_values"])
    intensity = scaled(intensity, attributes["intensity_values"])
    factor = time_factor(path, attributes["scan_acquisition_time"].get("units"), "second",
                         "scan_acquisition_time")
    time = np.where(time == NULL_VALUE, time, time * factor)
    return Scans("andi", time, offsets, mass, intensity, ANDI_NAMES, counts)


def check_andi_index(path: Path, start: np.ndarray, count: np.ndarray, n_points: int) -> None:
    """Every scan's ``scan_index .. + point_count`` lies inside the arrays and after the
    scan before it, else an InputError naming the scan."""
    end = start + count
    checks = (
        (count < 0, lambda i: f"point_count {int(count[i])} is negative"),
        ((start < 0) | (end > n_points), lambda i: f"scan_index {int(start[i])} + point_count "
         f"{int(count[i])} runs past the {n_points} points of mass_values"),
        (np.concatenate([[False], start[1:] < end[:-1]]), lambda i: f"scan_index "
         f"{int(start[i])} starts before the scan before it ends (scan_index "
         f"{int(start[i - 1])} + point_count {int(count[i - 1])}): the scans overlap"),
    )
    for bad, problem in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(path, f"scan {i + 1}: {problem(i)} ({int(bad.sum())} such "
                             "scans); scan_index/point_count disagree with the arrays",
                             "re-export the run (the file is truncated or its scan index is "
                             "damaged)", column="scan_index")


def scaled(values: np.ndarray, attributes: Mapping[str, Any]) -> np.ndarray:
    """``values * scale_factor + add_offset`` (netCDF packing), nulls left as they are."""
    scale = float(attributes.get("scale_factor", 1.0))
    offset = float(attributes.get("add_offset", 0.0))
    if scale == 1.0 and offset == 0.0:
        return values
    return np.where(values == NULL_VALUE, values, values * scale + offset)


def time_factor(path: Path, unit: Any, default: str, name: str) -> float:
    """Minutes per unit of a time (``unit`` None: ``default``); an unknown unit is an
    InputError."""
    text = text_attribute(unit).strip().lower() if unit is not None else default
    text = text or default
    if text not in SECONDS_PER:
        raise InputError(path, f"{name} is in unknown time unit {text!r}",
                         f"use one of {sorted(SECONDS_PER)}", column=name)
    return SECONDS_PER[text] / 60.0


# --- mzML -------------------------------------------------------------------------------------
MZML_NAMES = {"time": "scan start time", "mass": "m/z array", "intensity": "intensity array"}


def read_mzml(path: Path, data: bytes) -> Scans:
    """An mzML file read with pyteomics (lxml): MS1 spectra kept, zlib and 32/64-bit
    binary arrays decoded, each ``scan start time`` in its own unit."""
    from lxml import etree
    from pyteomics.auxiliary import PyteomicsError
    from pyteomics.mzml import MzML

    times: list[float] = []
    masses: list[np.ndarray] = []
    intensities: list[np.ndarray] = []
    counts = {"ms2_dropped": 0, "profile_scans": 0}
    try:
        with MzML(io.BytesIO(data), use_index=False, decode_binary=True) as reader:
            for spectrum in reader:
                if int(spectrum.get("ms level", 1)) != 1:
                    counts["ms2_dropped"] += 1
                    continue
                mass, intensity, time = mzml_spectrum(path, spectrum, len(times) + 1)
                times.append(time)
                masses.append(mass)
                intensities.append(intensity)
                counts["profile_scans"] += "profile spectrum" in spectrum
    except InputError:
        raise
    except (etree.LxmlError, PyteomicsError, ValueError, TypeError, KeyError) as exc:
        raise InputError(path, f"the mzML file cannot be read ({type(exc).__name__}: "
                         f"{str(exc)[:200]})", "re-export it (e.g. msconvert --mzML); a "
                         "truncated copy is a common cause") from None
    return concatenated("mzml", times, masses, intensities, MZML_NAMES, counts)


def mzml_spectrum(path: Path, spectrum: Mapping[str, Any], number: int
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """(m/z, intensity, time in minutes) of one MS1 spectrum, its lengths checked."""
    where = f"spectrum {spectrum.get('id', number)!r} (MS1 scan {number})"
    mass = np.asarray(spectrum.get("m/z array", ()), dtype=np.float64)
    intensity = np.asarray(spectrum.get("intensity array", ()), dtype=np.float64)
    declared = spectrum.get("defaultArrayLength")
    if len(mass) != len(intensity) or (declared is not None and int(declared) != len(mass)):
        raise InputError(path, f"{where}: defaultArrayLength {declared}, but its m/z array "
                         f"has {len(mass)} values and its intensity array {len(intensity)}",
                         "re-export the run (the binary arrays disagree with the spectrum)",
                         column="m/z array")
    scans = spectrum.get("scanList", {}).get("scan") or [{}]
    start = scans[0].get("scan start time")
    if start is None:
        raise InputError(path, f"{where} has no scan start time", "re-export the run with "
                         "retention times (msconvert writes them)", column="scan start time")
    factor = time_factor(path, getattr(start, "unit_info", None), "minute", "scan start time")
    time = float(start)
    return mass, intensity, time if time == NULL_VALUE else time * factor


def concatenated(fmt: str, times: Sequence[float], masses: Sequence[np.ndarray],
                 intensities: Sequence[np.ndarray], names: Mapping[str, str],
                 counts: dict[str, int]) -> Scans:
    """Scans from per-scan arrays."""
    lengths = np.array([len(m) for m in masses], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    empty = np.zeros(0, dtype=np.float64)
    return Scans(fmt, np.asarray(times, dtype=np.float64), offsets,
                 np.concatenate(masses) if masses else empty,
                 np.concatenate(intensities) if intensities else empty, names, counts)


# --- JCAMP-DX -------------------------------------------------------------------------------
JCAMP_LABEL = re.compile(r"##([^=]*)=(.*)")
JCAMP_NAMES = {"time": "RETENTION_TIME", "mass": "X (m/z)", "intensity": "Y (intensity)"}
JCAMP_DATA = ("XYDATA", "PEAKTABLE", "DATATABLE")
NUMBER_SEPARATORS = str.maketrans({",": " ", ";": " ", "?": " -9999 "})


@dataclass
class JcampPage:
    """One scan of a JCAMP-DX file while it is read: its time as written, the declared
    point count, the data lines, whether it is profile data, and its first line."""

    line: int
    time: float | None = None
    declared: int | None = None
    data: list[str] = field(default_factory=list)
    has_table: bool = False
    profile: bool = False


def jcamp_label(name: str) -> str:
    """A label as JCAMP-DX compares them: upper case without spaces, '-', '_' and '/'."""
    return re.sub(r"[\s\-_/]", "", name).upper()


def read_jcamp(path: Path, data: bytes) -> Scans:
    """A JCAMP-DX GC-MS file: one page per scan, opened by ``##PAGE= T=...`` (NTUPLES) or a
    block's ``##RETENTION_TIME=``, its points in ``##XYDATA=``, ``##PEAK TABLE=`` or
    ``##DATA TABLE=`` as ``(XY..XY)`` pairs."""
    pages: list[JcampPage] = []
    symbols: list[str] = []
    minutes_per = 1.0
    in_data = False
    pending: int | None = None  # ##NPOINTS= of a block, given before its scan starts

    def open_page(line: int, time: float | None = None) -> JcampPage:
        nonlocal pending
        pages.append(JcampPage(line, time, pending))
        pending = None
        return pages[-1]

    for number, line in enumerate(data.decode("latin-1").splitlines(), start=1):
        line = line.split("$$", 1)[0].strip()
        match = JCAMP_LABEL.match(line)
        if match is None:
            if in_data and line:
                pages[-1].data.append(line)
            continue
        label, value = jcamp_label(match.group(1)), match.group(2).strip()
        in_data = False
        open_scan = not pages or pages[-1].has_table
        if label == "PAGE":
            open_page(number, jcamp_number(path, value.split("=")[-1], number, "PAGE"))
        elif label == "RETENTIONTIME":
            page = open_page(number) if open_scan else pages[-1]
            page.time = jcamp_number(path, value.split()[0] if value else value, number,
                                     "RETENTION_TIME")
        elif label == "NPOINTS":
            declared = int(jcamp_number(path, value, number, "NPOINTS"))
            if open_scan:
                pending = declared
            else:
                pages[-1].declared = declared
        elif label == "SYMBOL":
            symbols = [s.strip().upper() for s in value.split(",")]
        elif label == "UNITS" and "T" in symbols:
            units = [u.strip().lower() for u in value.split(",")]
            unit = units[symbols.index("T")] if symbols.index("T") < len(units) else ""
            minutes_per = time_factor(path, unit or None, "minute", "UNITS of T")
        elif label in JCAMP_DATA:
            if jcamp_label(value.split(")")[0] + ")") not in ("(XY..XY)", "(XYXY)"):
                raise InputError(path, f"line {number}: ##{match.group(1)}={value} is not "
                                 "supported, only (XY..XY) pairs", "export the spectra as "
                                 "(XY..XY) peak tables (not compressed (X++(Y..Y)) data)",
                                 row=number)
            page = open_page(number) if open_scan else pages[-1]
            page.has_table = in_data = True
            page.profile = label == "XYDATA" or "XYPOINTS" in jcamp_label(value)
    return jcamp_scans(path, pages, minutes_per)


def jcamp_number(path: Path, text: str, line: int, label: str) -> float:
    text = text.strip()
    if text == "?":
        return NULL_VALUE
    try:
        return float(text)
    except ValueError:
        raise InputError(path, f"##{label}= {text[:40]!r} is not a number",
                         "write a plain number", row=line) from None


def jcamp_scans(path: Path, pages: Sequence[JcampPage], minutes_per: float) -> Scans:
    """Parse the pages' (x, y) pairs (all at once: one float conversion for the file)."""
    tokens: list[str] = []
    lengths = np.zeros(len(pages), dtype=np.int64)
    for i, page in enumerate(pages):
        if page.time is None:
            raise InputError(path, f"scan {i + 1} (line {page.line}) has no retention time",
                             "give each page ##PAGE= T=<time> or ##RETENTION_TIME=<time>",
                             row=page.line)
        found = " ".join(page.data).translate(NUMBER_SEPARATORS).split()
        if len(found) % 2:
            raise InputError(path, f"scan {i + 1} (line {page.line}) has {len(found)} "
                             "values: an m/z without its intensity", "write the points as "
                             "m/z,intensity pairs", row=page.line)
        if page.declared is not None and page.declared != len(found) // 2:
            raise InputError(path, f"scan {i + 1} (line {page.line}): ##NPOINTS= "
                             f"{page.declared}, but {len(found) // 2} points follow",
                             "re-export the run (the file is truncated or edited)",
                             row=page.line)
        lengths[i] = len(found) // 2
        tokens += found
    try:
        values = np.array(tokens, dtype=np.float64).reshape(-1, 2)
    except ValueError:
        bad = next(t for t in tokens if not is_number(t))
        page = next(p for p in pages
                    if bad in " ".join(p.data).translate(NUMBER_SEPARATORS).split())
        raise InputError(path, f"non-numeric value {bad[:40]!r} in the scan of line "
                         f"{page.line}", "correct or remove that value", row=page.line) from None
    time = np.array([p.time for p in pages], dtype=np.float64)
    time = np.where(time == NULL_VALUE, time, time * minutes_per)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    counts = {"profile_scans": sum(p.profile for p in pages)}
    return Scans("jcamp", time, offsets, values[:, 0].copy(), values[:, 1].copy(),
                 JCAMP_NAMES, counts)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


READERS: dict[str, Callable[[Path, bytes], Scans]] = {
    "andi": read_andi, "mzml": read_mzml, "jcamp": read_jcamp}


def read_scans(path: PathLike, data: bytes | None = None) -> Scans:
    """A run file's scans, its format detected from its content."""
    path = Path(path)
    data = read_raw_bytes(path) if data is None else data
    return READERS[detect_format(path, data)](path, data)


# --- ingest -----------------------------------------------------------------------------------
def ingest_instrument_run(path: PathLike, qc_cfg: Mapping[str, Any] | None = None,
                          expected_md5: str | None = None
                          ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read, validate and clean one instrument run file (any of :data:`FORMATS`).

    Returns the cached run (the CSV layouts' contract, ``time`` in minutes) and its QC
    record: the CSV layouts' counts (a point is a row), ``format`` and the counts of
    :data:`INSTRUMENT_COUNTS`. Fatal problems raise InputError naming the file and scan."""
    path = Path(path)
    qc = qc_settings(qc_cfg)
    data = read_raw_bytes(path)
    scans, digests = parse_with_digests(path, data, expected_md5 if qc["check_md5"] else None,
                                        lambda: read_scans(path, data))
    scan = scans.scan_of_points()
    time = scans.time[scan]
    null = (scans.mass == NULL_VALUE) | (scans.intensity == NULL_VALUE) | (time == NULL_VALUE)
    counts = {"null_values": int(null.sum()),
              "empty_scans": int((np.diff(scans.offsets) == 0).sum()),
              "ms2_dropped": 0, "profile_scans": 0, "unindexed_points": 0, **scans.counts}
    arrays = {"time": time[~null], "mass": scans.mass[~null],
              "intensity": scans.intensity[~null], "scan": scan[~null]}
    try:
        rows = clean_rows(path, arrays, scans.names, qc, lines=scan[~null] + 1)
    except InputError as exc:  # its row is the scan: say so
        raise InputError(exc.path, f"{exc.problem} (scan {exc.row})" if exc.row else
                         exc.problem, exc.fix, column=exc.column) from None
    run, counts["merged_points"] = merged_run(rows.arrays, rows.keep, rows.order)
    record = {"n_rows_raw": len(scans.mass), **rows.counts, "format": scans.format, **counts}
    record = finish_record(path, record, len(run), digests, qc)
    check_scans(path, run["time"].to_numpy(), "scan time")
    return run, record


def merged_run(arrays: Mapping[str, np.ndarray], keep: np.ndarray, order: np.ndarray | None
               ) -> tuple[pd.DataFrame, int]:
    """The cached run, in time order, with the points of one scan at one (rounded) m/z
    summed into one row (m/z ascending within a scan); and how many points were merged."""
    index = np.flatnonzero(keep) if order is None else order[keep[order]]
    scan, mass = arrays["scan"][index], arrays["mass"][index].astype(np.int64)
    changes = np.ones(len(scan), dtype=bool)
    changes[1:] = scan[1:] != scan[:-1]
    block = np.cumsum(changes)  # the scans, numbered in time order
    key = block * 65536 + mass  # masses are < 32768 after qc.max_mass
    intensity = arrays["intensity"][index]
    step = np.diff(key)
    if (step <= 0).any():  # points to merge (step 0), or m/z not ascending in a scan
        if (step < 0).any():
            by_key = np.argsort(key, kind="stable")
            key, intensity, index = key[by_key], intensity[by_key], index[by_key]
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        intensity = np.add.reduceat(intensity, starts)
        index = index[starts]
    run = pd.DataFrame({"time": arrays["time"][index].astype(np.float32),
                        "mass": arrays["mass"][index].astype(np.int16),
                        "intensity": intensity.astype(np.float32)})
    return run, len(scan) - len(run)


def ingest_instrument_shard(records: Sequence[Mapping[str, Any]], out_dir: PathLike,
                            qc_out_path: PathLike, qc_cfg: Mapping[str, Any] | None = None
                            ) -> pd.DataFrame:
    """:func:`~spectrovision.data.ingest.ingest_shard` for instrument run files."""
    return ingest_records(records, out_dir, qc_out_path,
                          lambda path, md5: ingest_instrument_run(path, qc_cfg, md5),
                          INSTRUMENT_QC_SCHEMA)


def summarize_instrument_qc(shard_tables: Iterable[PathLike | pd.DataFrame],
                            sheet_findings: Mapping[str, Sequence[str]] | None = None
                            ) -> tuple[pd.DataFrame, str]:
    """:func:`~spectrovision.data.ingest.summarize_qc` with the instrument counts and a
    line naming how many runs each format held."""
    qc, text = summarize_qc(shard_tables, sheet_findings, counts=INSTRUMENT_QC_COUNTS,
                            schema=INSTRUMENT_QC_SCHEMA)
    formats = qc["format"].value_counts().reindex(FORMATS).fillna(0).astype(int)
    line = "Formats: " + ", ".join(f"{name} {n}" for name, n in formats.items()) + " runs."
    head, sep, rest = text.partition("\n\n")  # after the title
    head2, sep2, rest2 = rest.partition("\n\n")  # after the row totals
    return qc, f"{head}{sep}{head2}{sep2}{line}\n\n{rest2}"

