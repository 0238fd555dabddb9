"""The explain, embed and novelty rules on the tiny config (one model, 1 epoch, 2 folds):
the default target builds them, their outputs hold what the contracts promise, and a
disabled stage leaves the default target. ~2-3 min on the 2-core VM (mostly the pipeline
up to the ensemble, and numba compiling UMAP once)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

pytestmark = pytest.mark.slow


def analysis_config(base: dict[str, Any]) -> dict[str, Any]:
    """The prior baseline joins the ensemble so that two members can disagree."""
    return {**base, "baselines": ["prior"],
            "ensemble": {**base["ensemble"], "selection": "all",
                         "include_baselines": True},
            "explain": {"samples_per_label": 1},
            "embed": {"n_neighbors": 5, "color_label": "aromatic"},
            "novelty": {"epochs": 2, "top_k": 4}}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--configfile",
                           "config.yaml", "--directory", str(workdir), "--cores", "2", *args],
                          capture_output=True, text=True, cwd=workdir)


@pytest.fixture(scope="module")
def analysed(tiny_mars2: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from spectrovision.config.schema import validate_config

    workdir = tmp_path_factory.mktemp("analysis")
    base = validate_config({  # tests/conftest.py tiny_config with one model
        "results": str(workdir / "results"), "seed": 7,
        "data": {"layout": "mars2", "dir": str(tiny_mars2)},
        "workflow": {"shards": 2, "train_threads": 1},
        "representations": {"tiny": {"n_mass": 64, "n_x": 32, "background_subtraction": True,
                                     "derivatized_channel": True}},
        "folds": {"n_folds": 2, "seed": 7, "val_in_folds": True},
        "model_defaults": {"epochs": 1, "batch_size": 8, "lr": 3.0e-3, "warmup_epochs": 0,
                           "time_resize": [24, 40], "amp": False, "channels_last": False},
        "models": {"tiny_pool": {"representation": "tiny", "backbone": "resnet10t",
                                 "head": "pool"}},
        "predict": {"tta_n_widths": 2, "tta_step": 8, "batch_size": 16},
    })
    config = analysis_config(base)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake(workdir, "--dry-run", "all")
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    targets = [str(Path(config["results"]) / p) for p in (
        "explain/tiny_pool/fold0/gradcam.png", "embed/tiny_pool/fold0/umap.png",
        "novelty/novelty_scores.csv")]
    proc = snakemake(workdir, "--quiet", "all", "--", *targets)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return {"workdir": workdir, "results": Path(config["results"]), "plan": plan.stdout,
            "config": config}


def test_default_target_plans_the_three_stages(analysed):
    for rule in ("explain", "embed", "novelty"):
        assert f"rule {rule}:" in analysed["plan"]


def test_explain_grid_and_table(analysed):
    out = analysed["results"] / "explain" / "tiny_pool" / "fold0"
    assert (out / "gradcam.png").stat().st_size > 20_000
    table = pd.read_csv(out / "gradcam.csv", dtype={"sample_id": str})
    assert len(table) and (table["truth"] == 1).all()
    assert table["prob"].between(0, 1).all()
    assert table.groupby("label").size().max() == 1  # samples_per_label
    folds = pd.read_csv(analysed["results"] / "folds.csv", dtype={"sample_id": str})
    assert set(table["sample_id"]) <= set(folds.loc[folds["fold"] == 0, "sample_id"])
    provenance = json.loads((out / "gradcam.png.provenance.json").read_text())
    assert provenance["params"]["samples_per_label"] == 1


def test_embed_lists_every_sample_once(analysed):
    out = analysed["results"] / "embed" / "tiny_pool" / "fold0"
    assert (out / "umap.png").stat().st_size > 20_000
    table = pd.read_parquet(out / "umap.parquet")
    sheet = pd.read_csv(Path(analysed["config"]["data"]["dir"]) / "metadata.csv",
                        dtype={"sample_id": str})
    assert sorted(table["sample_id"]) == sorted(sheet["sample_id"])
    unlabelled = set(pd.read_parquet(analysed["results"] / "ensemble" / "test_logits.parquet")
                     ["sample_id"])
    assert set(table.loc[~table["labelled"], "sample_id"]) == unlabelled
    assert table["truth"].isna().sum() == len(unlabelled)


def test_novelty_scores_every_unlabelled_sample(analysed):
    out = analysed["results"] / "novelty"
    scores = pd.read_csv(out / "novelty_scores.csv", dtype={"sample_id": str})
    ens = pd.read_parquet(analysed["results"] / "ensemble" / "test_logits.parquet")
    assert sorted(scores["sample_id"]) == sorted(ens["sample_id"])
    assert list(scores["rank_recon_error"]) == sorted(scores["rank_recon_error"])
    assert (scores["recon_error"] > 0).all()
    assert scores["entropy"].between(0, 1).all() and (scores["disagreement"] > 0).all()
    assert (out / "top_novel.png").stat().st_size > 20_000


def test_disabled_stages_leave_the_default_target(analysed):
    config = {**analysed["config"], "explain": {"enabled": False},
              "embed": {"enabled": False}, "novelty": {"enabled": False}}
    (analysed["workdir"] / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        plan = snakemake(analysed["workdir"], "--dry-run", "--forceall", "all")
    finally:
        (analysed["workdir"] / "config.yaml").write_text(yaml.safe_dump(analysed["config"]))
    assert plan.returncode == 0, plan.stderr[-3000:]
    for rule in ("explain", "embed", "novelty"):
        assert f"rule {rule}:" not in plan.stdout
