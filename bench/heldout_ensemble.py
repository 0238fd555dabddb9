"""Members and ensembles scored on held-out runs (issue 19, item 5): from a finished results
folder whose test runs have known labels, each member's test table and the ensemble built by
the library's own `build_ensemble` under each variant of `ensemble.fold_combine` and
`ensemble.shrink`, beside their out-of-fold and nested out-of-fold scores (Markdown table).

Models' test tables are re-gathered from `predictions/{model}/fold*/` under both fold
combines; baselines and tabular members keep the test tables their rule wrote (the
config's fold_combine) in every variant, since re-making them means re-fitting.

Usage: .venv/bin/python bench/heldout_ensemble.py RESULTS HELDOUT_LABELS.csv [CONFIG.yaml]
(CONFIG: the run's config, for its ensemble block; default RESULTS/../config.yaml).
HELDOUT_LABELS.csv: bench/heldout_split.py's for real Mars-1 runs, or the demo generator's
(`spectrovision demo-data --heldout-compounds FRACTION` writes the test runs' labels there,
runs whose compounds no labelled run has; config/mars2-cpu.yaml's measurement).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spectrovision.config.schema import validate_config  # noqa: E402
from spectrovision.data.folds import read_folds  # noqa: E402
from spectrovision.ensemble.build import build_ensemble  # noqa: E402
from spectrovision.ensemble.gather import FOLD_COMBINES, gather_member  # noqa: E402
from spectrovision.ensemble.tables import label_matrix, read_logit_table  # noqa: E402
from spectrovision.metrics import clipped_probs, task_log_loss  # noqa: E402


def fold_tables(folder: Path, name: str, labels: list[str]) -> dict[int, pd.DataFrame]:
    """``fold{k}/{name}`` of a model's predictions folder, by fold."""
    return {int(p.parent.name[4:]): read_logit_table(p, labels)
            for p in sorted(folder.glob(f"fold*/{name}"))}


def main(results: Path, heldout: Path, config: Path) -> None:
    cfg = validate_config(yaml.safe_load(config.read_text()))
    ens, task = cfg["ensemble"], cfg["task"]
    truth = pd.read_csv(heldout, dtype={"sample_id": str}).set_index("sample_id")
    labels = list(truth.columns)
    labelled = pd.read_parquet(results / "sheet" / "labelled.parquet")
    label_table = labelled.astype({"sample_id": str}).set_index("sample_id")[labels]
    folds = read_folds(results / "folds.csv")
    members = sorted(p.name for p in (results / "members").iterdir()
                     if (p / "oof_logits.parquet").exists())
    selection = results / "ensemble" / "selection.json"
    candidates = (json.loads(selection.read_text())["candidates"] if selection.exists()
                  else members)
    tables: dict[str, tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]] = {}
    regathered = []
    for how in FOLD_COMBINES:
        oof, test = {}, {}
        for m in members:
            folder = results / "predictions" / m
            if folder.is_dir():
                oof[m], test[m] = gather_member(fold_tables(folder, "oof_logits.parquet", labels),
                                                fold_tables(folder, "test_logits.parquet", labels),
                                                folds, labels, ens["clip"], task, how)
                regathered.append(m)
            else:
                oof[m] = read_logit_table(results / "members" / m / "oof_logits.parquet", labels)
                test[m] = read_logit_table(results / "members" / m / "test_logits.parquet", labels)
        tables[how] = (oof, test)

    def heldout_loss(table: pd.DataFrame) -> float:
        ids = [s for s in table["sample_id"] if s in truth.index]
        x = table.set_index("sample_id").loc[ids, labels].to_numpy(np.float64)
        return task_log_loss(truth.loc[ids, labels].to_numpy(np.float64),
                             clipped_probs(x, ens["clip"], task), ens["clip"], task)

    rows = []
    for m in members:
        oof_loss = None
        for how in FOLD_COMBINES:
            oof, test = tables[how]
            if oof_loss is None:
                y = label_matrix(label_table, list(oof[m]["sample_id"]), labels)
                x = oof[m][labels].to_numpy(np.float64)
                oof_loss = task_log_loss(y, clipped_probs(x, ens["clip"], task), ens["clip"], task)
            rows.append({"row": m, "fold_combine": how if m in regathered else "(as written)",
                         "shrink": "", "oof": oof_loss, "nested oof": np.nan,
                         "held-out": heldout_loss(test[m])})
            if m not in regathered:
                break
    for how in FOLD_COMBINES:
        for shrink in (False, True):
            oof, test = tables[how]
            result = build_ensemble(oof, test, label_table, labels, candidates,
                                    ens["selection"], ens["members"], ens["per_label_weights"],
                                    ens["clip"], task, shrink)
            mean = result.scores.query("label == 'mean'").set_index("member")["log_loss"]
            rows.append({"row": "ensemble (" + "+".join(result.selection["members"]) + ")",
                         "fold_combine": how, "shrink": str(shrink).lower(),
                         "oof": mean["ensemble"], "nested oof": mean["ensemble_nested"],
                         "held-out": heldout_loss(result.test)})
    frame = pd.DataFrame(rows)
    n_test = len(set(tables[FOLD_COMBINES[0]][1][members[0]]["sample_id"]) & set(truth.index))
    print(f"{len(folds[folds['fold'] >= 0])} out-of-fold runs, {n_test} held-out runs; "
          f"selection {ens['selection']}, per_label_weights {ens['per_label_weights']}\n")
    print("| row | fold_combine | shrink | OOF | nested OOF | held-out |")
    print("|---|---|---|---|---|---|")
    for r in frame.itertuples():
        nested = "" if np.isnan(r[5]) else f"{r[5]:.4f}"
        print(f"| {r.row} | {r.fold_combine} | {r.shrink} | {r.oof:.4f} | {nested} | "
              f"{r[6]:.4f} |")


if __name__ == "__main__":
    root = Path(sys.argv[1])
    main(root, Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3
         else root.parent / "config.yaml")
