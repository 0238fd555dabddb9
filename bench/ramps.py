"""GC-MS ramps (issue 12 item 7): today's demo recipe on narrow vs wide oven programs, and
the robustness options on wide ones.

    export PYTHONPATH=$PWD/src
    .venv/bin/python bench/ramps.py data  NAME [--n-runs 360] [--seed 0] [--wide]
    .venv/bin/python bench/ramps.py run   NAME DATA [VARIANT] [--epochs N] [--baselines-only]
    .venv/bin/python bench/ramps.py score NAME [NAME ...]

``data`` writes ``/tmp/ramps_{NAME}``: the demo generator's defaults (ramp 8-20 degC/min,
end 300 degC) or, with ``--wide``, ramp 4-25 degC/min and end 250-380 degC.
``run`` runs the workflow (``snakemake --cores 2 --resources gpu=2``) with
``config/config.yaml`` pointed at ``/tmp/ramps_{DATA}`` and results in
``/tmp/ramps_res_{NAME}``; VARIANT changes the representation / models:

- ``plain``: config/config.yaml as shipped (``tm128x32``: time axis min-max per run; the
  numbers in docs/benchmarks.md were taken with the demo config of commit 4eda96f);
- ``warp``: plus ``time_warp: [0.5, 2.0]`` for both CNNs;
- ``bleed``: every time-axis representation (``tm128x32``, ``tmraw128x64``) on the
  pseudo-temperature axis ``x_axis: bleed`` with ``bleed_masses: [207, 281]`` and the fixed
  window ``[0, 6.4]`` e-folds, in as many columns as the time axis had (step 6.4 / n_x);
- ``spectrum``: the baselines on one time bin (``time_bins: 1``: each m/z's largest cell
  over the whole run, no retention time at all, ramp-invariant up to the end-temperature
  cut);
- ``bleed_damped``: ``bleed`` plus ``mass_scale`` 0 on the bleed ions (207, 208, 209, 281,
  282, 267, 191), meant to keep a hot run's bleed from setting the image maximum; a
  no-op on ``tm128x32``, whose 128 m/z rows stop below those ions (it reproduced ``bleed``).

``--baselines-only`` runs only what the baselines need (ingest, renders, folds, the
baselines: about a minute) instead of the whole workflow. ``score`` prints every member's
mean out-of-fold log loss (from ``ensemble/scores.csv``, or from each
``members/*/oof_logits.parquet`` and the labelled sheet after a baselines-only run).
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WIDE = {"ramp_rate": (4.0, 25.0), "end_temp": (250.0, 380.0)}
BLEED = {"x_axis": "bleed", "bleed_masses": [207, 281], "x_window": [0.0, 6.4], "x_step": 0.2}
BLEED_IONS = (207, 208, 209, 281, 282, 267, 191)  # the demo's siloxane bleed, less m/z 73


def variant_config(variant: str, data: Path, results: Path, epochs: int | None
                   ) -> dict[str, Any]:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["data"]["dir"] = str(data)
    cfg["results"] = str(results)
    if epochs is not None:
        cfg["model_defaults"]["epochs"] = epochs
    if variant == "warp":
        cfg["model_defaults"]["time_warp"] = [0.5, 2.0]
    elif variant == "bleed":
        for rep in cfg["representations"].values():
            if rep.get("x_axis", "time") == "time":
                n_x = rep.pop("n_x")
                rep.update({**copy.deepcopy(BLEED), "x_step": BLEED["x_window"][1] / n_x})
    elif variant == "spectrum":
        for name in cfg["baselines"]:
            if name in ("benchmark_lr", "logistic_l2"):
                cfg.setdefault("baseline_settings", {}).setdefault(name, {})["time_bins"] = 1
    elif variant == "bleed_damped":
        rep = cfg["representations"]["tm128x32"]
        rep.update(copy.deepcopy(BLEED))
        rep["mass_scale"] = {str(mz): 0.0 for mz in BLEED_IONS}
        rep.pop("n_x")
    elif variant != "plain":
        raise SystemExit(f"unknown variant {variant}; use plain, warp, bleed, bleed_damped or "
                         "spectrum")
    return cfg


def member_scores(results: Path) -> dict[str, float]:
    """Each member's mean out-of-fold log loss over the labels (the label mean)."""
    table = results / "ensemble" / "scores.csv"
    if table.exists():
        scores = pd.read_csv(table)
        scores = scores[scores["label"] == "mean"] if "mean" in set(scores["label"]) else \
            scores.groupby("member", sort=False, as_index=False)["log_loss"].mean()
        return dict(zip(scores["member"], scores["log_loss"]))
    from spectrovision.metrics import mean_log_loss, sigmoid

    sheet = pd.read_parquet(results / "sheet" / "labelled.parquet").set_index("sample_id")
    out = {}
    for path in sorted(results.glob("members/*/oof_logits.parquet")):
        oof = pd.read_parquet(path).set_index("sample_id")
        labels = [c for c in oof.columns if c != "fold"]
        y = sheet.loc[oof.index, labels].to_numpy(float)
        out[path.parent.name] = mean_log_loss(y, sigmoid(oof[labels].to_numpy(float)), 1e-4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("data")
    p.add_argument("name")
    p.add_argument("--n-runs", type=int, default=360)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wide", action="store_true")
    p = sub.add_parser("run")
    p.add_argument("name")
    p.add_argument("data")
    p.add_argument("variant", nargs="?", default="plain")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--baselines-only", action="store_true")
    p = sub.add_parser("score")
    p.add_argument("names", nargs="+")
    args = parser.parse_args()
    if args.cmd == "data":
        from spectrovision.synth.demo import generate_demo_dataset

        start = time.perf_counter()
        generate_demo_dataset(Path(f"/tmp/ramps_{args.name}"), n_runs=args.n_runs,
                              seed=args.seed, **(WIDE if args.wide else {}))
        print(f"{args.n_runs} runs in {time.perf_counter() - start:.0f} s")
    elif args.cmd == "run":
        results = Path(f"/tmp/ramps_res_{args.name}")
        results.mkdir(parents=True, exist_ok=True)
        config = results / "config.yaml"
        cfg = variant_config(args.variant, Path(f"/tmp/ramps_{args.data}"), results,
                             args.epochs)
        config.write_text(yaml.safe_dump(cfg))
        targets = ([str(results / "members" / b / "oof_logits.parquet") for b in cfg["baselines"]]
                   if args.baselines_only else [str(results / "ensemble/scores.csv")])
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        start = time.perf_counter()
        subprocess.run([str(BIN / "snakemake"), "--cores", "2", "--resources", "gpu=2",
                        "--configfile", str(config), "--", *targets],
                       cwd=REPO, env=env, check=True)
        print(f"{args.name}: {time.perf_counter() - start:.0f} s wall")
    else:
        for name in args.names:
            print(name, "  ".join(f"{m} {v:.4f}" for m, v in member_scores(
                Path(f"/tmp/ramps_res_{name}")).items()))


if __name__ == "__main__":
    main()
