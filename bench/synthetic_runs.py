"""Synthetic Mars-2-sized GC-MS runs for the render benchmarks (no real data needed).

A run is ``n_scans`` scans of ``peaks_per_scan`` fractional m/z values each, plus the
helium carrier gas at m/z 4 in every scan: 2,400 x 250 = 600k rows by default, the size
of a Mars-2 run. Times are float32 values (so the CSV and the Parquet cache agree exactly)
and intensities integer counts below 2**24 (exact in float32).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def synthetic_run(rng: np.random.Generator, n_scans: int = 2400,
                  peaks_per_scan: int = 249) -> pd.DataFrame:
    """Raw run as the instrument writes it: ``time`` (min), fractional ``mass``,
    integer ``intensity``; sorted by time, helium (m/z ~4) in every scan."""
    times = np.sort(rng.uniform(0.0, 50.0, n_scans)).astype(np.float32)
    masses = rng.integers(1, 550, (n_scans, peaks_per_scan)) + rng.normal(0, 0.08,
                                                                         (n_scans, peaks_per_scan))
    helium = np.full((n_scans, 1), 4.0) + rng.normal(0, 0.02, (n_scans, 1))
    counts = rng.gamma(0.6, 2000.0, (n_scans, peaks_per_scan)).astype(np.int64)
    return pd.DataFrame({
        "time": np.repeat(times, peaks_per_scan + 1).astype(np.float64),
        "mass": np.hstack([helium, masses]).ravel().round(3),
        "intensity": np.hstack([np.full((n_scans, 1), 4_000_000), counts]).ravel(),
    })


def cache_table(raw: pd.DataFrame, drop_masses: tuple[int, ...] = (4,)) -> pa.Table:
    """The ingest contract's Parquet table for a raw run: float32 time/intensity, int16
    rounded mass, dropped masses removed, sorted by time (numpy, no pandas groupby)."""
    mass = np.rint(raw["mass"].to_numpy()).astype(np.int16)
    keep = ~np.isin(mass, drop_masses)
    order = np.argsort(raw["time"].to_numpy()[keep], kind="stable")
    return pa.table({
        "time": raw["time"].to_numpy(np.float32)[keep][order],
        "mass": mass[keep][order],
        "intensity": np.clip(raw["intensity"].to_numpy(np.float32), 0, None)[keep][order],
    })


def write_cache(path: str | os.PathLike[str], table: pa.Table) -> None:
    """Write a cached run the way ingest does (zstd Parquet)."""
    pq.write_table(table, path, compression="zstd")


def render_spec(**settings):
    """The RenderSpec of a run representation with ``settings``, the schema's defaults
    filled in (RenderSpec has no defaults of its own). Needs ``src`` on ``sys.path``."""
    from spectrovision.config.schema import representation_block
    from spectrovision.data.layouts import get_layout
    from spectrovision.render.runs import RenderSpec

    block = get_layout("mars2").representation_settings(representation_block(settings))
    return RenderSpec.from_config(block)
