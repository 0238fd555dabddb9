"""Members and ensembles scored on held-out runs (issue 19, item 5): from a finished results
folder whose test runs have known labels, each member's test table and the ensemble built by
the library's own `build_ensemble` under each variant of `ensemble.fold_combine` and
`ensemble.shrink`, beside their out-of-fold and nested out-of-fold scores (Markdown table).

Models' test tables are re-gathered from `predictions/{model}/fold*/` under both fold
combines; baselines and tabular members keep the test tables their rule wrote (the
config's fold_combine) in every variant, since re-making them means re-fitting.

Task multiclass adds accuracy columns (out-of-fold, held-out). bench/heldout_particles.py
imports :func:`heldout_scores` for its particle variants.

Usage: .venv/bin/python bench/heldout_ensemble.py RESULTS HELDOUT_LABELS.csv [CONFIG.yaml]
(CONFIG: the run's config, for its ensemble block; default RESULTS/../config.yaml).
`--config-members` (after the arguments): only the members that CONFIG's models, tabular
members and baselines name are scored and are candidates, so one results folder that holds
the members of several configs compares them.
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
from spectrovision.metrics import accuracy, clipped_probs, task_log_loss  # noqa: E402


def fold_tables(folder: Path, name: str, labels: list[str]) -> dict[int, pd.DataFrame]:
    """``fold{k}/{name}`` of a model's predictions folder, by fold."""
    return {int(p.parent.name[4:]): read_logit_table(p, labels)
            for p in sorted(folder.glob(f"fold*/{name}"))}


def heldout_scores(results: Path, heldout: Path, config: Path,
                   config_members: bool = False) -> tuple[pd.DataFrame, str]:
    """``(rows, summary line)``: one row per member (per fold combine where re-gathered) and
    per ensemble variant, columns ``row, fold_combine, shrink, oof, nested oof, held-out``
    (log loss) and, for task multiclass, ``oof acc, held-out acc``. ``config_members``: only
    the members that the config names (models, tabular, baselines)."""
    cfg = validate_config(yaml.safe_load(config.read_text()))
    ens, task = cfg["ensemble"], cfg["task"]
    truth = pd.read_csv(heldout, dtype={"sample_id": str}).set_index("sample_id")
    labels = list(truth.columns)
    labelled = pd.read_parquet(results / "sheet" / "labelled.parquet")
    label_table = labelled.astype({"sample_id": str}).set_index("sample_id")[labels]
    folds = read_folds(results / "folds.csv")
    named = {*cfg["models"], *cfg["tabular"], *cfg["baselines"]}
    members = sorted(p.name for p in (results / "members").iterdir()
                     if (p / "oof_logits.parquet").exists()
                     and (not config_members or p.name in named))
    selection = results / "ensemble" / "selection.json"
    candidates = [m for m in (json.loads(selection.read_text())["candidates"]
                              if selection.exists() else members) if m in members]
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

    multiclass = task == "multiclass"

    def scored(y: np.ndarray, table: pd.DataFrame, ids: list[str]) -> dict[str, float]:
        """log loss (and accuracy, multiclass) of ``table``'s rows ``ids`` against ``y``."""
        x = table.set_index("sample_id").loc[ids, labels].to_numpy(np.float64)
        probs = clipped_probs(x, ens["clip"], task)
        out = {"loss": task_log_loss(y, probs, ens["clip"], task)}
        if multiclass:
            out["acc"] = accuracy(y, probs)
        return out

    def heldout_score(table: pd.DataFrame) -> dict[str, float]:
        ids = [s for s in table["sample_id"] if s in truth.index]
        return scored(truth.loc[ids, labels].to_numpy(np.float64), table, ids)

    def row(name: str, how: str, shrink: str, oof: dict[str, float], nested: float,
            held: dict[str, float]) -> dict[str, object]:
        out: dict[str, object] = {"row": name, "fold_combine": how, "shrink": shrink,
                                  "oof": oof["loss"], "nested oof": nested,
                                  "held-out": held["loss"]}
        if multiclass:
            out.update({"oof acc": oof["acc"], "held-out acc": held["acc"]})
        return out

    rows = []
    for m in members:
        oof_score = None
        for how in FOLD_COMBINES:
            oof, test = tables[how]
            if oof_score is None:
                ids = list(oof[m]["sample_id"])
                oof_score = scored(label_matrix(label_table, ids, labels), oof[m], ids)
            rows.append(row(m, how if m in regathered else "(as written)", "", oof_score,
                            np.nan, heldout_score(test[m])))
            if m not in regathered:
                break
    for how in FOLD_COMBINES:
        for shrink in (False, True):
            oof, test = tables[how]
            result = build_ensemble(oof, test, label_table, labels, candidates,
                                    ens["selection"], ens["members"], ens["per_label_weights"],
                                    ens["clip"], task, shrink, bags=ens["bags"],
                                    bag_seed=ens["bag_seed"])
            mean = result.scores.query("label == 'mean'").set_index("member")
            oof_score = {"loss": mean.loc["ensemble", "log_loss"]}
            if multiclass:
                oof_score["acc"] = mean.loc["ensemble", "accuracy"]
            rows.append(row("ensemble (" + "+".join(result.selection["members"]) + ")", how,
                            str(shrink).lower(), oof_score,
                            mean.loc["ensemble_nested", "log_loss"], heldout_score(result.test)))
    n_test = len(set(tables[FOLD_COMBINES[0]][1][members[0]]["sample_id"]) & set(truth.index))
    return pd.DataFrame(rows), (
        f"{len(folds[folds['fold'] >= 0])} out-of-fold runs, {n_test} held-out runs; "
        f"selection {ens['selection']}, per_label_weights {ens['per_label_weights']}")


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` (:func:`heldout_scores`' rows) as a Markdown table, numbers to 4 places
    (accuracy as a percentage to 2), an empty cell for NaN."""
    names = {"row": "row", "fold_combine": "fold_combine", "shrink": "shrink", "oof": "OOF",
             "nested oof": "nested OOF", "held-out": "held-out", "oof acc": "OOF acc",
             "held-out acc": "held-out acc"}
    columns = [c for c in frame.columns if c in names]

    def cell(column: str, value: object) -> str:
        if isinstance(value, float):
            if np.isnan(value):
                return ""
            return f"{100 * value:.2f}%" if column.endswith("acc") else f"{value:.4f}"
        return str(value)

    lines = ["| " + " | ".join(names[c] for c in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, r[c]) for c in columns) + " |"
              for r in frame.to_dict("records")]
    return "\n".join(lines)


def main(results: Path, heldout: Path, config: Path, config_members: bool = False) -> None:
    frame, summary = heldout_scores(results, heldout, config, config_members)
    print(summary + "\n")
    print(markdown_table(frame))


if __name__ == "__main__":
    flag = "--config-members" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--config-members"]
    root = Path(args[0])
    main(root, Path(args[1]), Path(args[2]) if len(args) > 2 else root.parent / "config.yaml",
         flag)
