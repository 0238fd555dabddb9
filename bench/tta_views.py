"""Augmented TTA views against the plain view, on the fold models of a finished run.

    PYTHONPATH=$PWD/src .venv/bin/python bench/tta_views.py RESULTS LABELS_CSV REP MEMBER... \
        [--views 0 8 16] [--seed 0] [--out DIR]

For each member (a model of RESULTS trained with cached-render augmentations on
representation REP) and each number of views, every fold model predicts its held-out rows
through ``learn.predict.run_predict`` (one TTA width, ``tta_augment_seed`` SEED); prints
the out-of-fold mean log loss (clip 1e-4) per member and number of views, and writes the
out-of-fold tables to ``DIR/{member}_{views}_{fold}.parquet`` (default /tmp/tta_views), which
an ensemble can be rebuilt from (``ensemble.build.build_ensemble``). Nothing in RESULTS is
written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from spectrovision.learn.predict import run_predict
from spectrovision.learn.settings import PredictSettings
from spectrovision.metrics import mean_log_loss, sigmoid


def member_oof(results: Path, rep: str, member: str, views: int, seed: int, out: Path
               ) -> pd.DataFrame:
    """The member's out-of-fold logits (every fold model on its held-out rows)."""
    folds = pd.read_csv(results / "folds.csv")
    tta = PredictSettings(tta_n_widths=1, tta_step=8, tta_augment_n=views,
                          tta_augment_seed=seed, batch_size=128)
    parts = []
    for fold in sorted(f for f in folds["fold"].unique() if f >= 0):
        oof = out / f"{member}_{views}_{fold}.parquet"
        run_predict(inputs={"weights": results / "models" / member / f"fold{fold}" / "model.pt",
                            "stacks": [results / "render" / rep / "stack_train.npy"],
                            "stack_ids": [results / "render" / rep / "stack_train.csv"],
                            "folds": results / "folds.csv"},
                    outputs={"oof": oof, "test": out / "unused_test.parquet"}, settings=tta,
                    fold=int(fold), unlabelled=[])
        parts.append(pd.read_parquet(oof))
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("labels", type=Path)
    parser.add_argument("rep")
    parser.add_argument("members", nargs="+")
    parser.add_argument("--views", type=int, nargs="+", default=[0, 8, 16])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/tta_views"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    truth = pd.read_csv(args.labels, dtype={"sample_id": str}).set_index("sample_id")
    labels = list(truth.columns)
    print("| member | " + " | ".join(f"{v} views" for v in args.views) + " |")
    for member in args.members:
        scores = []
        for views in args.views:
            oof = member_oof(args.results, args.rep, member, views, args.seed, args.out)
            y = truth.loc[oof["sample_id"], labels].to_numpy(float)
            scores.append(mean_log_loss(y, sigmoid(oof[labels].to_numpy(float)), 1e-4))
        print(f"| {member} | " + " | ".join(f"{s:.4f}" for s in scores) + " |", flush=True)


if __name__ == "__main__":
    main()
