"""Demo data and folds: generation time and size, fold quality, and label learnability.

    .venv/bin/python bench/bench_demo.py [N_RUNS=200] [SEED=0]

1. ``generate_demo_dataset(n_runs)`` wall time and size on disk (target: 200 runs < 30 s).
2. ``make_folds`` (5 folds) on the labelled runs: time, largest per-label deviation from
   the ideal positives per fold, fold sizes.
3. Learnability: per label, 5-fold (those folds) out-of-fold log loss of an L2 logistic
   regression on each run's image max-pooled to 256 m/z x 8 time bins (background
   subtracted, scaled by max, log1p1000) against the label prior's log loss.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from spectrovision.synth.demo import LABELS, generate_demo_dataset
from spectrovision.data.folds import make_folds

TIME_BINS = 8
N_MASS = 256


def pooled_image(path: Path) -> np.ndarray:
    run = pd.read_csv(path)
    mass = run["mass"].round().to_numpy().astype(int)
    keep = (mass > 4) & (mass < N_MASS)
    t = run["time"].to_numpy()
    col = np.minimum(((t - t.min()) / (np.ptp(t) or 1.0) * TIME_BINS).astype(int), TIME_BINS - 1)
    image = np.zeros((N_MASS, TIME_BINS))
    np.maximum.at(image, (mass[keep], col[keep]), run["intensity"].to_numpy()[keep])
    image -= image.min(axis=1, keepdims=True)
    image /= image.max() or 1.0
    return (np.log10(1 + 1000 * image) / np.log10(1001)).ravel()


def main(n_runs: int, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = generate_demo_dataset(Path(tmp) / "demo", n_runs=n_runs, seed=seed)
        elapsed = time.perf_counter() - start
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"generate_demo_dataset(n_runs={n_runs}): {elapsed:.1f} s, {size / 1e6:.1f} MB")
        meta = pd.read_csv(root / "metadata.csv").set_index("sample_id")
        labels = pd.concat([pd.read_csv(root / f) for f in ("train_labels.csv",
                                                            "val_labels.csv")])
        labels = labels.set_index("sample_id")[list(LABELS)]
        print("prevalence:", labels.mean().round(2).to_dict())

        start = time.perf_counter()
        folds = make_folds(labels, 5, seed)
        print(f"make_folds(5) on {len(labels)} labelled runs: {time.perf_counter() - start:.2f} s")
        dev = max((labels[c].groupby(folds).sum() - labels[c].sum() / 5).abs().max()
                  for c in labels.columns)
        print(f"largest per-label deviation from ideal: {dev:.2f}; fold sizes "
              f"{folds.value_counts().sort_index().tolist()}")

        features = np.stack([pooled_image(root / meta.loc[s, "features_path"])
                             for s in labels.index])
    print("| label | prior log loss | LR OOF log loss |\n|---|---|---|")
    for label in LABELS:
        y = labels[label].to_numpy()
        oof = np.zeros(len(y))
        for fold in range(5):
            held = (folds == fold).to_numpy()
            model = LogisticRegression(C=0.1, max_iter=2000).fit(features[~held], y[~held])
            oof[held] = model.predict_proba(features[held])[:, 1]
        prior = log_loss(y, np.full(len(y), y.mean()))
        print(f"| {label} | {prior:.3f} | {log_loss(y, oof):.3f} |")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(args[0] if args else 200, args[1] if len(args) > 1 else 0)
