"""Time the ensemble step's heavy parts at Mars-2 size (no timed tests; numbers go to
docs/benchmarks.md). Usage: .venv/bin/python bench/bench_ensemble.py [n_members]"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spectrovision.ensemble.baselines import BenchmarkLR  # noqa: E402
from spectrovision.ensemble.members import coarse_time_features, cross_fit  # noqa: E402
from spectrovision.ensemble.selection import fit_label_weights, greedy_select  # noqa: E402


def main(n_members: int = 20, n: int = 1121, n_labels: int = 9, clip: float = 1e-4) -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((n, n_labels)) < 0.2).astype(float)
    members = {f"m{i:02d}": rng.uniform(0.5, 3) * (2 * y - 1) + rng.normal(0, 1.5, y.shape)
               for i in range(n_members)}
    t0 = time.perf_counter()
    chosen, path = greedy_select(members, y, clip)
    t1 = time.perf_counter()
    fit_label_weights([members[m] for m in chosen], y, clip)
    t2 = time.perf_counter()
    stack = rng.random((n + 463, 3, 256, 192)).astype(np.float16)
    features = coarse_time_features(stack, 8)
    t3 = time.perf_counter()
    ids = [f"S{i:04d}" for i in range(len(stack))]
    labels = pd.DataFrame(y, index=pd.Index(ids[:n], name="sample_id"),
                          columns=[f"l{j}" for j in range(n_labels)])
    folds = pd.DataFrame({"sample_id": ids[:n], "fold": np.arange(n) % 5})
    cross_fit(BenchmarkLR(features, 1.0), ids, labels, folds, ids[n:],
              list(labels.columns), clip)
    t4 = time.perf_counter()
    print(f"greedy selection, {n_members} members x {n} OOF x {n_labels} labels: "
          f"{t1 - t0:.2f} s ({len(chosen)} chosen, {len(path)} steps)")
    print(f"per-label weights, {len(chosen)} members: {t2 - t1:.2f} s")
    print(f"coarse features, {len(stack)} x 3 x 256 x 192 float16 -> 8 bins: {t3 - t2:.2f} s")
    print(f"benchmark_lr 5 folds x {n_labels} labels, {features.shape[1]} features: "
          f"{t4 - t3:.2f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
