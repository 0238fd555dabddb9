"""The ensemble with each variant member as one more candidate (issue 19, item 4): from a
finished results folder, for each VARIANT the library's own `build_ensemble` over the
run's candidates without the other VARIANTs listed (the config's ensemble block, the run's member
tables), its out-of-fold and nested out-of-fold mean log loss and the members it chose;
first the row without any variant (the run as it was). With ``--replace MEMBER`` each
variant takes MEMBER's place among the candidates instead (what the run would choose had
MEMBER been configured as the variant). A Markdown table on stdout.

Usage: .venv/bin/python bench/ensemble_candidates.py CONFIG.yaml [--replace MEMBER]
VARIANT [VARIANT ...]
(CONFIG: the run's config; its results folder must hold members/<name>/ of every member)
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spectrovision.config.schema import validate_config  # noqa: E402
from spectrovision.data.sheet import sample_sheet  # noqa: E402
from spectrovision.ensemble.build import build_ensemble  # noqa: E402
from spectrovision.ensemble.rows import ENSEMBLE_ROWS  # noqa: E402
from spectrovision.ensemble.tables import read_logit_table  # noqa: E402


def main(config: Path, variants: list[str], replace: str | None = None) -> None:
    cfg = validate_config(yaml.safe_load(config.read_text()))
    ens, task, results = cfg["ensemble"], cfg["task"], Path(cfg["results"])
    sheet = sample_sheet({k: v for k, v in cfg["data"].items() if k != "submission_format"})
    labels, label_table = sheet.attrs["labels"], sheet.attrs["label_table"]
    baselines = list(cfg["baselines"]) if ens["include_baselines"] else []
    every = sorted(cfg["models"]) + sorted(cfg["tabular"]) + baselines  # the workflow's order
    tables = {m: [read_logit_table(results / "members" / m / f"{kind}_logits.parquet", labels)
                  for kind in ("oof", "test")] for m in every}
    how = f"in place of {replace}" if replace else "added"
    print(f"| candidate {how} | its OOF | ensemble | ensemble_nested | chosen |")
    print("| --- | --- | --- | --- | --- |")
    for variant in [None, *variants]:
        candidates = [m for m in every if (m not in variants or m == variant)
                      and (variant is None or m != replace)]
        result = build_ensemble({m: tables[m][0] for m in candidates},
                                {m: tables[m][1] for m in candidates}, label_table, labels,
                                candidates, ens["selection"], ens["members"],
                                ens["per_label_weights"], ens["clip"], task, ens["shrink"],
                                bags=ens["bags"], bag_seed=ens["bag_seed"])
        mean = result.scores[result.scores["label"] == "mean"].set_index("member")["log_loss"]
        own = "" if variant is None else f"{mean[variant]:.5f}"
        rows = " | ".join(f"{mean[r]:.5f}" for r in ENSEMBLE_ROWS)
        print(f"| {variant or '(none)'} | {own} | {rows} | "
              f"{', '.join(result.selection['members'])} |")


if __name__ == "__main__":
    args = sys.argv[2:]
    swap = args[1] if args[:1] == ["--replace"] else None
    main(Path(sys.argv[1]), args[2:] if swap else args, swap)
