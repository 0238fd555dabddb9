"""Bench scripts run against today's library: each on tiny generated inputs, so that an API
change that breaks one fails here instead of at the next benchmark."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectrovision.data.sheet import sample_sheet
from support import tiny_workflow_config, write_config

ROOT = Path(__file__).resolve().parents[1]
LOSS = r"OOF mean log loss (\d+\.\d+)"


def _rendered_run(tiny_mars2, results):
    """The files bench_tabular.py reads from a rendered run of ``tiny_mars2``: every split's
    stacked render of representation ``tiny`` and a 2-fold folds.csv; pixel (m, 0) of a
    labelled run is its label m (a planted signal), the rest noise."""
    sheet = sample_sheet({"layout": "mars2", "dir": str(tiny_mars2)})
    labels, table = sheet.attrs["labels"], sheet.attrs["label_table"]
    rng = np.random.default_rng(0)
    render = results / "render" / "tiny"
    render.mkdir(parents=True)
    for split, part in sheet.groupby("split"):
        images = rng.random((len(part), 1, max(8, len(labels)), 8)).astype(np.float32)
        for row, sample in enumerate(part["sample_id"]):
            if sample in table.index:
                images[row, 0, :len(labels), 0] = table.loc[sample, labels].to_numpy()
        np.save(render / f"stack_{split}.npy", images)
        part[["sample_id"]].to_csv(render / f"stack_{split}.csv", index=False)
    labelled = list(sheet.loc[sheet["labelled"], "sample_id"])
    pd.DataFrame({"sample_id": labelled, "fold": np.arange(len(labelled)) % 2}).to_csv(
        results / "folds.csv", index=False)


def test_bench_tabular_scores_a_member_that_beats_the_prior_on_a_planted_signal(
        tiny_mars2, tmp_path):
    pytest.importorskip("lightgbm")
    results = tmp_path / "results"
    _rendered_run(tiny_mars2, results)
    config = tiny_workflow_config(tiny_mars2, results)
    config["tabular"] = {"gbm": {"representation": "tiny", "time_bins": 4, "n_estimators": 20,
                                 "min_child_samples": 2, "early_stopping_rounds": None}}
    path = write_config(tmp_path / "config.yaml", config)
    proc = subprocess.run([sys.executable, str(ROOT / "bench/bench_tabular.py"), str(path),
                           "gbm", "1"], env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    prior = re.search(rf"^prior {LOSS}$", proc.stdout, re.M)
    member = re.search(rf"^gbm, 1 thread\(s\), OMP_WAIT_POLICY=PASSIVE: \d+\.\d s, {LOSS}$",
                       proc.stdout, re.M)
    assert prior and member, proc.stdout
    assert re.search(r"^features \(\d+, \d+\): ", proc.stdout, re.M), proc.stdout
    assert float(member.group(1)) < float(prior.group(1)) - 0.1, proc.stdout


def test_bench_tabular_prints_its_usage_without_arguments():
    proc = subprocess.run([sys.executable, str(ROOT / "bench/bench_tabular.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Usage:" in proc.stderr


def test_every_bench_script_imports_against_the_library():
    """Each bench/*.py's module level (its imports) runs; the main guard does not."""
    scripts = sorted(str(p) for p in (ROOT / "bench").glob("*.py"))
    code = ("import runpy, sys, traceback\nbad = []\nfor path in sys.argv[1:]:\n"
            "    try:\n        runpy.run_path(path, run_name='bench_import_check')\n"
            "    except Exception:\n"
            "        bad.append(path + ': ' + traceback.format_exc(limit=1))\n"
            "print('\\n'.join(bad))\nsys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code, *scripts], cwd=ROOT / "bench",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_heldout_scores_give_each_member_and_ensemble_log_loss_and_accuracy(tmp_path):
    """bench/heldout_ensemble.py's scoring (which bench/heldout_particles.py prints) on a
    made-up multiclass results folder: member ``sure`` puts logit 3 on the true class of
    every sample, ``zero`` always says class ``a``; held-out rows score against the labels
    file, out-of-fold rows against labelled.parquet."""
    sys.path.insert(0, str(ROOT / "bench"))
    from heldout_ensemble import heldout_scores, markdown_table
    from support import derived_config

    labels = ["a", "b", "c"]
    results = tmp_path / "results"
    oof_ids, test_ids = [f"L{i:02d}" for i in range(30)], [f"T{i:02d}" for i in range(12)]
    truth = {s: i % 3 for i, s in enumerate(oof_ids + test_ids)}
    onehot = lambda ids: pd.DataFrame(  # noqa: E731
        [[s, *np.eye(3)[truth[s]]] for s in ids], columns=["sample_id", *labels])
    (results / "sheet").mkdir(parents=True)
    onehot(oof_ids).to_parquet(results / "sheet" / "labelled.parquet")
    onehot(test_ids).to_csv(tmp_path / "heldout_labels.csv", index=False)
    pd.DataFrame({"sample_id": oof_ids, "fold": np.arange(30) % 3}).to_csv(
        results / "folds.csv", index=False)
    for name, logits in (("sure", lambda s: 3.0 * np.eye(3)[truth[s]]),
                         ("zero", lambda s: np.array([1.0, 0.0, 0.0]))):
        folder = results / "members" / name
        folder.mkdir(parents=True)
        for part, ids in (("oof", oof_ids), ("test", test_ids)):
            table = pd.DataFrame([logits(s) for s in ids], columns=labels)
            table.insert(0, "sample_id", ids)
            if part == "oof":
                table.insert(1, "fold", np.arange(30) % 3)
            table.to_parquet(folder / f"{part}_logits.parquet")
    config = write_config(tmp_path / "config.yaml", derived_config(
        {"data": {"dir": str(tmp_path)}}, base=ROOT / "config" / "particles.yaml"))
    frame, summary = heldout_scores(results, tmp_path / "heldout_labels.csv", config)
    rows = frame.set_index("row")
    sure_loss = -np.log(np.exp(3) / (np.exp(3) + 2))
    assert rows.loc["sure", "held-out"] == pytest.approx(sure_loss, rel=1e-3)
    assert rows.loc["sure", "oof"] == pytest.approx(sure_loss, rel=1e-3)
    assert rows.loc["sure", ["oof acc", "held-out acc"]].tolist() == [1.0, 1.0]
    assert rows.loc["zero", ["oof acc", "held-out acc"]].tolist() == [1 / 3, 1 / 3]
    ensembles = frame[frame["row"].str.startswith("ensemble (")]
    assert len(ensembles) == 4 and (ensembles["held-out acc"] == 1.0).all()
    assert summary.startswith("30 out-of-fold runs, 12 held-out runs")
    table = markdown_table(frame)
    assert "| OOF acc | held-out acc |" in table and "| 100.00% | 100.00% |" in table
    # --config-members: a config that names only 'sure' compares that member alone
    named = write_config(tmp_path / "sure.yaml", derived_config(
        {"data": {"dir": str(tmp_path)}, "models": {"sure": {"representation": "grey64"}},
         "baselines": []}, base=ROOT / "config" / "particles.yaml"))
    alone, _ = heldout_scores(results, tmp_path / "heldout_labels.csv", named, True)
    assert set(alone["row"]) == {"sure", "ensemble (sure)"}
