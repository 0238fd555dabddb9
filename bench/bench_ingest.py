"""Ingest one Mars-2-sized run (600k rows): pyarrow's bare CSV read of the file vs
``ingest_run`` + ``write_run`` (read, md5/sha256, parse, validate, clean, zstd Parquet write),
its parts, and a few Parquet codec/layout choices for the cached run (size, write and read
time). The cached run is asserted equal to the synthetic ingest contract and to what render
reads. Target: ingest <= 3x the bare CSV read. Numbers go to docs/benchmarks.md (Ingest).

Usage: .venv/bin/python bench/bench_ingest.py [repeats]
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_render import median_seconds  # noqa: E402
from synthetic_runs import cache_table, render_spec, synthetic_run  # noqa: E402

from spectrovision.data.sheet import run_columns  # noqa: E402
from spectrovision.data.ingest import ingest_run, parse_csv, write_run  # noqa: E402
from spectrovision.render.runs import read_run  # noqa: E402

COLUMNS = run_columns({"layout": "mars2", "columns": {}})
# (name, compression, compression_level, float type of time/intensity)
LAYOUTS = [
    ("zstd (level 1, pyarrow default) float32", "zstd", None, pa.float32()),
    ("zstd level 3, float32", "zstd", 3, pa.float32()),
    ("zstd level 9, float32", "zstd", 9, pa.float32()),
    ("snappy, float32", "snappy", None, pa.float32()),
    ("uncompressed, float32", "none", None, pa.float32()),
    ("zstd (level 1), float64", "zstd", None, pa.float64()),
]


def with_float(table: pa.Table, float_type: pa.DataType) -> pa.Table:
    return pa.table({name: table.column(name).cast(float_type)
                     if pa.types.is_floating(table.column(name).type) else table.column(name)
                     for name in table.column_names})


def main(repeats: int = 9) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csv, cache = Path(tmp) / "run.csv", Path(tmp) / "run.parquet"
        raw = synthetic_run(np.random.default_rng(0))  # seed 0 as in bench_render.py
        raw.to_csv(csv, index=False)
        run, record = ingest_run(csv, COLUMNS)
        write_run(cache, run)
        expected = cache_table(raw).to_pandas()
        for name in ("time", "mass", "intensity"):  # the synthetic contract, exactly
            assert np.array_equal(run[name].to_numpy(), expected[name].to_numpy()), name
        rendered = read_run(cache, render_spec())  # what render reads = what ingest made
        for name, values in rendered.items():
            assert values.dtype == run[name].dtype and np.array_equal(values, run[name]), name
        print(f"run: {len(raw):,} raw rows ({record['fractional_mass']:,} fractional m/z, "
              f"{record['dropped_mass']:,} helium), {len(run):,} cached rows, "
              f"CSV {csv.stat().st_size / 1e6:.1f} MB, Parquet {cache.stat().st_size / 1e6:.2f} MB")

        data = csv.read_bytes()
        names = ["time", "mass", "intensity"]

        def ingest_and_write() -> None:
            out, _ = ingest_run(csv, COLUMNS)
            write_run(Path(tmp) / "ingest.parquet", out)

        steps = {
            "pyarrow read_csv(path), defaults (the reference)": lambda: pacsv.read_csv(csv),
            "ingest_run + write_run (the whole ingest of a run)": ingest_and_write,
            "  ingest_run alone (read, hash, parse, validate, clean)":
                lambda: ingest_run(csv, COLUMNS),
            "  read bytes": csv.read_bytes,
            "  md5 + sha256 of the bytes": lambda: (hashlib.md5(data).hexdigest(),
                                                    hashlib.sha256(data).hexdigest()),
            "  parse_csv (float64 columns, from bytes)": lambda: parse_csv(csv, data, names),
            "  write_run (zstd Parquet)": lambda: write_run(Path(tmp) / "w.parquet", run),
        }
        times = {name: median_seconds(fn, repeats) for name, fn in steps.items()}
        reference = times["pyarrow read_csv(path), defaults (the reference)"]
        print(f"\n| step | ms (median of {repeats}) | x bare read |\n|---|---:|---:|")
        for name, seconds in times.items():
            print(f"| {name} | {seconds * 1e3:.1f} | {seconds / reference:.2f} |")
        # the headline ratio from interleaved pairs, so that load from other jobs on the
        # machine hits both sides alike
        ratios = []
        for _ in range(repeats):
            t_ref = median_seconds(lambda: pacsv.read_csv(csv), 1)
            ratios.append(median_seconds(ingest_and_write, 1) / t_ref)
        ratio = statistics.median(ratios)
        print(f"\ningest / bare CSV read = {ratio:.2f} (median of {repeats} interleaved pairs; "
              f"range {min(ratios):.2f}-{max(ratios):.2f}; target <= 3: "
              f"{'met' if ratio <= 3 else 'MISSED'})")

        table = pa.Table.from_pandas(run, preserve_index=False)
        print(f"\n| cached-run layout | MB | write ms | read ms (render's read_run) |\n"
              "|---|---:|---:|---:|")
        spec = render_spec()
        for name, codec, level, float_type in LAYOUTS:
            path = Path(tmp) / f"layout_{codec}_{level}_{float_type}.parquet"
            typed = with_float(table, float_type)

            def write(typed: pa.Table = typed, path: Path = path, codec: str = codec,
                      level: int | None = level) -> None:
                pq.write_table(typed, path, compression=codec, compression_level=level)

            t_write = median_seconds(write, repeats)
            t_read = median_seconds(lambda path=path: read_run(path, spec), repeats)
            back = read_run(path, spec)
            assert np.array_equal(back["intensity"].astype(np.float32), run["intensity"])
            print(f"| {name} | {path.stat().st_size / 1e6:.2f} | {t_write * 1e3:.1f} | "
                  f"{t_read * 1e3:.1f} |")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
