"""A held-out split of the real Mars-1 training runs, for measuring what out-of-fold scores
hide (issue 19): ``n_heldout`` commercial runs become split ``test`` (their labels go to
``heldout_labels.csv``, which the run never reads), the others stay ``train``.

The run files are not copied: ``metadata.csv`` names them by absolute path, so the config
needs ``data.extra_roots: [SOURCE]``.

Usage: .venv/bin/python bench/heldout_split.py SOURCE OUT [n_heldout] [seed]
(SOURCE: the extracted ``mars1-train`` folder of ../shared/data/mars1-train.tar.xz;
defaults 163 and 2026, the split of docs/benchmarks.md, "Ensembles on held-out runs").
Then: a copy of config/mars1-cpu.yaml with ``data.dir: OUT``, ``data.extra_roots:
[SOURCE]``, and bench/heldout_ensemble.py RESULTS OUT/heldout_labels.csv CONFIG.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    source, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    n_heldout = int(sys.argv[3]) if len(sys.argv) > 3 else 163
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 2026
    out.mkdir(parents=True, exist_ok=True)
    meta = pd.read_csv(source / "metadata.csv")
    labels = pd.read_csv(source / "train_labels.csv")
    commercial = meta.loc[meta["instrument_type"] == "commercial", "sample_id"].to_numpy()
    held = set(np.random.default_rng(seed).choice(commercial, n_heldout, replace=False))
    meta["split"] = np.where(meta["sample_id"].isin(held), "test", "train")
    meta["features_path"] = [str(source / p) for p in meta["features_path"]]
    meta.to_csv(out / "metadata.csv", index=False)
    labels[~labels["sample_id"].isin(held)].to_csv(out / "train_labels.csv", index=False)
    labels[labels["sample_id"].isin(held)].to_csv(out / "heldout_labels.csv", index=False)
    print(meta["split"].value_counts().to_string())


if __name__ == "__main__":
    main()
