"""Reference renderer written the obvious pandas way (read_csv + groupby), independent of
``spectrovision.render.runs``. Used to check renders (tests/test_render.py) and as the
baseline that render-from-cache is timed against (bench/bench_render.py).

It starts from a raw Mars-2 style CSV (``time,mass,intensity``, fractional m/z) and does
what ingest does to a run (float32 time/intensity, m/z rounded, carrier-gas masses
dropped, negative intensities clipped, sorted by time), then renders with the same
options as :class:`spectrovision.render.runs.RenderSpec`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd


def clean_like_ingest(raw: pd.DataFrame, drop_masses: Sequence[int] = (4,)) -> pd.DataFrame:
    """Typed, cleaned run: float32 time/intensity/temp, int16 rounded mass, dropped masses
    removed, negatives clipped, sorted by time."""
    run = pd.DataFrame({
        "time": raw["time"].astype("float32"),
        "mass": raw["mass"].round().astype("int16"),
        "intensity": raw["intensity"].astype("float32").clip(lower=0),
    })
    if "temp" in raw.columns:
        run["temp"] = raw["temp"].astype("float32")
    run = run[~run["mass"].isin(list(drop_masses))]
    return run.sort_values("time", kind="stable").reset_index(drop=True)


def reference_image(run: pd.DataFrame, spec, derivatized: float = 0) -> np.ndarray:
    """Render a cleaned run with pandas groupby; same result as render.render_sample."""
    x = run[spec.x_axis].astype("float64")
    span = x.max() - x.min()
    frame = pd.DataFrame({
        "bin": ((x - x.min()) / span * spec.n_x).astype("int64").clip(upper=spec.n_x - 1)
        if span > 0 else 0,
        "mass": run["mass"].astype("int64"),
        "value": run["intensity"].astype("float64"),
    })
    frame = frame[(frame["mass"] >= 0) & (frame["mass"] < spec.n_mass)]
    if spec.background_subtraction:
        frame = frame.assign(value=frame["value"] - frame.groupby("mass")["value"].transform("min"))
    cells = frame.groupby(["mass", "bin"])["value"].agg(spec.aggregation)
    table = (cells.unstack("bin", fill_value=0.0)
             .reindex(index=range(spec.n_mass), columns=range(spec.n_x), fill_value=0.0))
    peak = table.to_numpy().max()
    if peak > 0:
        table = table / peak
    if spec.normalization == "mass":
        table = table.div(table.max(axis=1).where(lambda m: m > 0, 1.0), axis=0)
    elif spec.normalization == "time":
        table = table.div(table.max(axis=0).where(lambda m: m > 0, 1.0), axis=1)
    if spec.log == "log1p1000":
        table = np.log10(1 + 1000 * table.clip(lower=0)) / np.log10(1001)
    elif spec.log == "clipped_log10":
        table = 1 - np.log10(table.clip(lower=spec.log_floor)) / np.log10(spec.log_floor)
    channels = [table.to_numpy()]
    if spec.coord_channels:
        channels.append(np.tile(np.linspace(0, 1, spec.n_x), (spec.n_mass, 1)))
        channels.append(np.tile(np.linspace(0, 1, spec.n_mass)[:, None], (1, spec.n_x)))
    if spec.derivatized_channel:
        channels.append(np.full((spec.n_mass, spec.n_x), float(derivatized)))
    return np.stack(channels).astype(spec.dtype)


def reference_from_csv(path: str | os.PathLike[str], spec, derivatized: float = 0,
                       drop_masses: Sequence[int] = (4,)) -> np.ndarray:
    """End to end: pandas read_csv of a raw run, ingest-like cleaning, groupby render."""
    return reference_image(clean_like_ingest(pd.read_csv(path), drop_masses), spec, derivatized)
