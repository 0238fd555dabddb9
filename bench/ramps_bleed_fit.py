"""How well ``x_axis: bleed`` recovers the oven temperature on a generated data set.

    export PYTHONPATH=$PWD/src
    .venv/bin/python bench/ramps_bleed_fit.py /tmp/ramps_wide --wide [--seed 0]

Re-draws each run's plan from its seed (the plan is the first thing drawn), estimates the
pseudo-temperature of every row of its CSV from m/z 207 and 281 and prints, over the runs,
the error of ``55 degC x`` (the demo column's bleed e-fold) against the true oven
temperature: median and 95th percentile of each run's median absolute error and maximum.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from spectrovision.synth.demo import (BLEED_EFOLD, T_START, load_spectra_library,
                                     oven_temperature, plan_run, sample_splits)
from spectrovision.render.runs import bleed_axis


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wide", action="store_true")
    args = parser.parse_args()
    wide = {"ramp_rate": (4.0, 25.0), "end_temp": (250.0, 380.0)} if args.wide else {}
    meta = pd.read_csv(args.data / "metadata.csv")
    library = load_spectra_library()
    assert len(sample_splits(len(meta), None)) == len(meta)
    medians, maxima, seconds = [], [], 0.0
    for i, rel in enumerate(meta["features_path"]):
        plan = plan_run(np.random.default_rng([args.seed, i]), library, (240, 360), 1 / 3,
                        **wide)
        run = pd.read_csv(args.data / rel)
        mass = run["mass"].round().to_numpy().astype(np.int16)
        start = time.perf_counter()
        x = bleed_axis(run["time"].to_numpy(), mass, run["intensity"].to_numpy(), (207, 281),
                       args.data / rel)
        seconds += time.perf_counter() - start
        error = np.abs(x * BLEED_EFOLD - (oven_temperature(run["time"].to_numpy(), plan)
                                          - T_START))
        medians.append(np.median(error))
        maxima.append(error.max())
    print(f"{len(meta)} runs, {1000 * seconds / len(meta):.1f} ms per run: |error| degC, "
          f"per-run median: median {np.median(medians):.1f}, p95 {np.percentile(medians, 95):.1f};"
          f" per-run max: median {np.median(maxima):.1f}, p95 {np.percentile(maxima, 95):.1f}")


if __name__ == "__main__":
    main()
