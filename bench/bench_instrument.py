"""Ingest of instrument run files (data.layout instrument) against the bare parse of the same
file by the library that reads its format: scipy.io's netcdf_file (ANDI/AIA), pyteomics'
MzML (mzML), and this package's JCAMP-DX parser (no library reads JCAMP-DX GC-MS pages).

The run is the real Agilent ChemStation export ``../shared/data/instrument/agilent-gcms.cdf``
(6,401 scans, 157,201 points) when present, else a synthetic one of the same size; its scans
are also written as mzML (zlib, 64-bit) and JCAMP-DX by ``synth.instrument_files``. Each
format's ingest (read, md5+sha256, detect, parse, validate, clean, merge, zstd Parquet
write) is timed against the bare parse in interleaved pairs; the target is ingest <= 3x the
bare parse. The bench asserts the three formats ingest to the same run.
Numbers go to docs/benchmarks.md (Instrument files).

Usage: .venv/bin/python bench/bench_instrument.py [repeats]
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spectrovision.data.ingest import file_digests, write_run  # noqa: E402
from spectrovision.data.instrument import (ANDI_VARIABLES, Scans, ingest_instrument_run,  # noqa: E402
                                           read_jcamp, read_scans)
from spectrovision.synth.instrument_files import WRITERS  # noqa: E402

AGILENT = Path(__file__).resolve().parents[2] / "shared" / "data" / "instrument" / \
    "agilent-gcms.cdf"


def synthetic_scans(n_scans: int = 6401, per_scan: int = 25, seed: int = 0) -> Scans:
    """A GC-MS-sized run: ``per_scan`` centroids per scan (m/z 15-400, 0.1 steps)."""
    rng = np.random.default_rng(seed)
    mass = np.sort(rng.choice(np.arange(150, 4000) / 10, size=(n_scans, per_scan)), axis=1)
    intensity = rng.exponential(500.0, size=(n_scans, per_scan)).round()
    offsets = np.arange(n_scans + 1) * per_scan
    return Scans("andi", np.arange(n_scans) * 0.01 + 0.08, offsets, mass.ravel(),
                 intensity.ravel(), {})


def bare_andi(path: Path) -> None:
    from scipy.io import netcdf_file

    with netcdf_file(io.BytesIO(path.read_bytes()), "r", mmap=False) as nc:
        [nc.variables[name][:].astype(np.float64) for name in ANDI_VARIABLES]


def bare_mzml(path: Path) -> None:
    from pyteomics.mzml import MzML

    with MzML(str(path), use_index=False, decode_binary=True) as reader:
        for spectrum in reader:
            spectrum["m/z array"], spectrum["intensity array"]
            spectrum["scanList"]["scan"][0]["scan start time"]


def bare_jcamp(path: Path) -> None:
    read_jcamp(path, path.read_bytes())


BARE: dict[str, Callable[[Path], None]] = {"andi": bare_andi, "mzml": bare_mzml,
                                           "jcamp": bare_jcamp}


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    return paired(fn, lambda: None, repeats)[0]


def paired(first: Callable[[], object], second: Callable[[], object], repeats: int
           ) -> tuple[float, float, float]:
    """Medians of ``first`` and ``second`` (s) and the median of their per-pair ratio."""
    a, b = [], []
    for _ in range(repeats):
        for fn, out in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b), statistics.median(
        x / y for x, y in zip(a, b))


def main(repeats: int = 9) -> None:
    scans = read_scans(AGILENT) if AGILENT.is_file() else synthetic_scans()
    source = "agilent-gcms.cdf" if AGILENT.is_file() else "synthetic"
    print(f"run: {source}, {scans.n_scans:,} scans, {len(scans.mass):,} points")
    with tempfile.TemporaryDirectory() as tmp:
        files = {"andi": AGILENT} if AGILENT.is_file() else {}
        for fmt, (writer, suffix) in WRITERS.items():
            if fmt not in files:
                files[fmt] = Path(tmp) / f"run{suffix}"
                files[fmt].write_bytes(writer(scans, "bench"))
        runs = {fmt: ingest_instrument_run(path, {})[0] for fmt, path in files.items()}
        for fmt, run in runs.items():
            assert run["mass"].equals(runs["andi"]["mass"]), fmt
            assert np.allclose(run["time"], runs["andi"]["time"], rtol=1e-6), fmt
            assert np.allclose(run["intensity"], runs["andi"]["intensity"], rtol=1e-6), fmt
        print(f"cached run: {len(runs['andi']):,} rows (each format the same)\n")
        print("| format | file MB | bare parse ms | ingest + write ms | x bare (median of "
              "pairs) |")
        print("|---|---:|---:|---:|---:|")
        for fmt, path in files.items():
            def ingest_and_write(path: Path = path) -> None:
                run, _ = ingest_instrument_run(path, {})
                write_run(Path(tmp) / "out.parquet", run)

            bare_path = path
            ingest_s, bare_s, ratio = paired(ingest_and_write, lambda: BARE[fmt](bare_path),
                                             repeats)
            print(f"| {fmt} | {path.stat().st_size / 1e6:.1f} | {bare_s * 1e3:.0f} | "
                  f"{ingest_s * 1e3:.0f} | {ratio:.2f} |")
        andi, data = files["andi"], files["andi"].read_bytes()
        parts = {"read bytes": andi.read_bytes, "md5 + sha256": lambda: file_digests(data),
                 "read_scans (parse + index checks)": lambda: read_scans(andi, data),
                 "ingest_instrument_run (all but the write)":
                     lambda: ingest_instrument_run(andi, {}),
                 "write_run (zstd Parquet)":
                     lambda: write_run(Path(tmp) / "part.parquet", runs["andi"])}
        print("\nandi, its parts (ms, median):",
              "; ".join(f"{name} {median_seconds(fn, repeats) * 1e3:.1f}"
                        for name, fn in parts.items()))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
