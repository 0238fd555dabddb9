"""Render one Mars-2-sized run (600k rows) from its Parquet cache, against (1) an ingest of
that run (pyarrow.csv.read_csv + zstd Parquet write, the reference point) and (2) the pandas
read_csv + groupby reference end to end (CSV -> image); the arrays are asserted equal.
Target: render-from-cache <= 1/4 of the ingest. Numbers go to docs/benchmarks.md.

Usage: .venv/bin/python bench/bench_render.py [repeats]
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pandas_reference import reference_from_csv  # noqa: E402
from synthetic_runs import cache_table, render_spec, synthetic_run, write_cache  # noqa: E402

from spectrovision.render.runs import read_run, render_sample  # noqa: E402

SPECS = {
    "default (256x192, sum, log1p1000, float16)": render_spec(),
    "demo (128x96, background subtraction, derivatized channel)": render_spec(
        n_mass=128, n_x=96, background_subtraction=True, derivatized_channel=True),
    "max aggregation + mass normalisation + 2 coord channels": render_spec(
        aggregation="max", normalization="mass", coord_channels=True),
}


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int = 15) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        csv, cache = Path(tmp) / "run.csv", Path(tmp) / "run.parquet"
        raw = synthetic_run(rng)
        raw.to_csv(csv, index=False)
        table = cache_table(raw)
        write_cache(cache, table)
        print(f"run: {len(raw):,} raw rows, {table.num_rows:,} cached rows, "
              f"CSV {csv.stat().st_size / 1e6:.1f} MB, Parquet {cache.stat().st_size / 1e6:.1f} MB")

        def ingest() -> None:  # the reference point: read the CSV, write it as zstd Parquet
            write_cache(Path(tmp) / "ingest.parquet", pacsv.read_csv(csv))

        def ingest_and_clean() -> None:
            write_cache(Path(tmp) / "ingest.parquet",
                        cache_table(pacsv.read_csv(csv).to_pandas()))

        t_read_csv = median_seconds(lambda: pacsv.read_csv(csv), repeats)
        t_ingest = median_seconds(ingest, repeats)
        t_clean = median_seconds(ingest_and_clean, repeats)
        print(f"pyarrow read_csv alone: {t_read_csv * 1e3:.1f} ms")
        print(f"ingest = pyarrow read_csv + zstd Parquet write: {t_ingest * 1e3:.1f} ms "
              f"(with typing/rounding/helium drop/sort: {t_clean * 1e3:.1f} ms); ratios "
              "below are against the faster of the two")
        t_ingest = min(t_ingest, t_clean)
        for name, spec in SPECS.items():
            check = dataclasses.replace(spec, dtype="float32")
            mine = render_sample(read_run(cache, check), check, derivatized=1)
            expected = reference_from_csv(csv, check, derivatized=1)
            np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=1e-6)
            t_render = median_seconds(
                lambda spec=spec: render_sample(read_run(cache, spec), spec, 1), repeats)
            t_read = median_seconds(lambda spec=spec: read_run(cache, spec), repeats)
            t_ref = median_seconds(lambda spec=spec: reference_from_csv(csv, spec, 1),
                                   max(3, repeats // 5))
            print(f"{name}: render from cache {t_render * 1e3:.1f} ms "
                  f"(Parquet read {t_read * 1e3:.1f} ms) = {t_render / t_ingest:.2f} x ingest; "
                  f"pandas CSV->image reference {t_ref * 1e3:.0f} ms "
                  f"({t_ref / t_render:.0f} x slower); arrays equal")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
