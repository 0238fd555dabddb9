"""The logistic_l2 yardstick on other render cells of a finished run (no re-render).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python \
        bench/yardstick_cells.py CONFIG LABELS_CSV TAG:REPRESENTATION:TIME_BINS ...

CONFIG: the run's config (its ``results`` folder holds the renders and folds.csv). Each
variant fits ``logistic_l2`` (the config's ``baseline_settings.logistic_l2`` with that
representation and number of time bins) on the stored stacks and folds through
``ensemble.baselines.run_baseline`` (the stacks of every split the run rendered: train,
and val and test where they exist), writes ``/tmp/yardstick_cells/{TAG}_oof.parquet`` and
``_test.parquet`` and prints the out-of-fold mean log loss (clip 1e-4). Pin the BLAS
threads as above: unpinned, one fit ran 5x slower beside other jobs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml

from spectrovision.config.schema import validate_config
from spectrovision.ensemble.baselines import run_baseline
from spectrovision.metrics import mean_log_loss, sigmoid

OUT = Path("/tmp/yardstick_cells")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("labels", type=Path)
    parser.add_argument("variants", nargs="+", help="TAG:REPRESENTATION:TIME_BINS")
    args = parser.parse_args()
    cfg = validate_config(yaml.safe_load(args.config.read_text()))
    res = Path(cfg["results"])
    data = {k: v for k, v in cfg["data"].items() if k != "submission_format"}
    truth = pd.read_csv(args.labels, dtype={"sample_id": str}).set_index("sample_id")
    labels = list(truth.columns)
    OUT.mkdir(parents=True, exist_ok=True)
    print("| variant | representation | time bins | OOF |")
    for variant in args.variants:
        tag, rep, bins = variant.split(":")
        # every split's stack the run rendered (Mars-2: val in the folds, test predicted)
        splits = [s for s in ("train", "val", "test")
                  if (res / "render" / rep / f"stack_{s}.npy").exists()]
        settings = {**cfg["baseline_settings"]["logistic_l2"], "representation": rep,
                    "time_bins": int(bins)}
        out = {"oof": OUT / f"{tag}_oof.parquet", "test": OUT / f"{tag}_test.parquet"}
        run_baseline(name="logistic_l2",
                     inputs={"stacks": [res / "render" / rep / f"stack_{s}.npy" for s in splits],
                             "stack_ids": [res / "render" / rep / f"stack_{s}.csv"
                                           for s in splits],
                             "folds": res / "folds.csv"},
                     outputs=out, settings=settings, data=data, labels=labels,
                     seed=cfg["seed"], clip=1e-4, task=cfg["task"])
        oof = pd.read_parquet(out["oof"])
        y = truth.loc[oof["sample_id"], labels].to_numpy(float)
        loss = mean_log_loss(y, sigmoid(oof[labels].to_numpy(float)), 1e-4)
        print(f"| {tag} | {rep} | {bins} | {loss:.4f} |", flush=True)


if __name__ == "__main__":
    main()
