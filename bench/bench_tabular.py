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

from spectrovision.config.schema import load_config  # noqa: E402
from spectrovision.data.folds import read_folds  # noqa: E402
from spectrovision.data.sheet import sample_sheet  # noqa: E402
from spectrovision.ensemble.baselines import Prior  # noqa: E402
from spectrovision.ensemble.members import Renders, cross_fit, unlabelled_ids  # noqa: E402
from spectrovision.ensemble.tables import label_matrix  # noqa: E402
from spectrovision.ensemble.tabular import (GBMSettings, fit_tabular,  # noqa: E402
                                            member_features, resolve_tabular)
from spectrovision.metrics import task_log_loss, to_probs  # noqa: E402


def main(config_path: str, member: str, threads: list[int]) -> None:
    cfg = load_config(config_path)
    sheet = sample_sheet(cfg["data"])
    settings = resolve_tabular(cfg, member, list(sheet.columns))
    results = Path(cfg["results"])
    # the rule's inputs (workflow/rules/common.smk fitted_member_inputs): every split's stack
    stacks = ([results / "render" / settings.representation / f"stack_{s}.npy"
               for s in sorted(sheet["split"].unique())]
              if settings.representation is not None else [])
    renders = Renders(tuple(map(str, stacks)),
                      tuple(str(s.with_suffix(".csv")) for s in stacks))
    t0 = time.perf_counter()
    features = member_features(settings, sheet, renders, augment=True)
    print(f"features {features.values.shape}: {time.perf_counter() - t0:.2f} s")
    labels, table = sheet.attrs["labels"], sheet.attrs["label_table"]
    folds = read_folds(results / "folds.csv")
    ids, test_ids = list(sheet["sample_id"]), unlabelled_ids(sheet)
    clip, task = cfg["ensemble"]["clip"], cfg["task"]
    fold_combine = cfg["ensemble"]["fold_combine"]
    key_ions = int(settings.key_ions) if settings.key_ion_ratios else 0

    def loss(oof):
        y = label_matrix(table, list(oof["sample_id"]), labels, "folds.csv")
        return task_log_loss(y, to_probs(oof[labels].to_numpy(), task), clip, task)

    prior, _ = cross_fit(Prior(), ids, table, folds, test_ids, labels, clip, task,
                         fold_combine=fold_combine)
    print(f"prior OOF mean log loss {loss(prior):.4f}")
    for n in threads:
        t0 = time.perf_counter()
        result = fit_tabular(features, ids, table, folds, test_ids, labels,
                             GBMSettings.from_settings(settings, n), clip, task, fold_combine,
                             key_ions)
        print(f"{member}, {n} thread(s), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}: "
              f"{time.perf_counter() - t0:.1f} s, OOF mean log loss {loss(result.oof):.4f}")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3:]] or [1])
