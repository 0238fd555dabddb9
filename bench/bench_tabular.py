"""Time a tabular (LightGBM) member on a rendered run and score it against the prior (no
timed tests; numbers go to docs/benchmarks.md). The config's workflow must have rendered
the representation and written folds.csv already (e.g. the demo up to the ensemble).

Usage: .venv/bin/python bench/bench_tabular.py CONFIG MEMBER [THREADS ...]
(set OMP_WAIT_POLICY yourself to compare; the rule's script sets PASSIVE)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spectrovision.ensemble.baselines import cross_fit, prior_fit_predict  # noqa: E402
from spectrovision.config.schema import load_config  # noqa: E402
from spectrovision.data.folds import read_folds  # noqa: E402
from spectrovision.data.sheet import sample_sheet  # noqa: E402
from spectrovision.metrics import mean_log_loss, sigmoid  # noqa: E402
from spectrovision.ensemble.tabular import (GBMSettings, build_features, fit_tabular,  # noqa: E402
                                   resolve_tabular)


def main(config_path: str, member: str, threads: list[int]) -> None:
    cfg = load_config(config_path)
    sheet = sample_sheet(cfg["data"])
    settings = resolve_tabular(cfg, member, list(sheet.columns))
    render = Path(cfg["results"]) / "render" / settings["representation"]
    splits = sorted(sheet["split"].unique())
    t0 = time.perf_counter()
    features = build_features(sheet, [render / f"stack_{s}.npy" for s in splits],
                              [render / f"stack_{s}.csv" for s in splits],
                              settings["time_bins"], settings["metadata_columns"])
    print(f"features {features.values.shape}: {time.perf_counter() - t0:.2f} s")
    labels, table = sheet.attrs["labels"], sheet.attrs["label_table"]
    folds = read_folds(Path(cfg["results"]) / "folds.csv")
    ids, test_ids = list(sheet["sample_id"]), list(sheet.loc[~sheet["labelled"], "sample_id"])
    clip = cfg["ensemble"]["clip"]

    def loss(oof):
        return mean_log_loss(table.loc[oof["sample_id"], labels].to_numpy(),
                             sigmoid(oof[labels].to_numpy()), clip)

    prior, _ = cross_fit(prior_fit_predict(), ids, table, folds, test_ids, labels, clip)
    print(f"prior OOF mean log loss {loss(prior):.4f}")
    for n in threads:
        t0 = time.perf_counter()
        result = fit_tabular(features, ids, table, folds, test_ids, labels,
                             GBMSettings.from_settings(settings, n), clip)
        print(f"{member}, {n} thread(s), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}: "
              f"{time.perf_counter() - t0:.1f} s, OOF mean log loss {loss(result.oof):.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3:]] or [1])
