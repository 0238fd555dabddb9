"""The explain, embed and novelty rules on the tiny config (one model, 1 epoch, 2 folds):
the default target builds them, their outputs hold what the contracts promise, and a
disabled stage leaves the default target. ~2-3 min on the 2-core VM (mostly the pipeline
up to the ensemble, and numba compiling UMAP once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from support import TINY_MODELS, dry_run_jobs, run_snakemake, tiny_workflow_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # setup: the whole tiny run


def analysis_config(base: dict[str, Any]) -> dict[str, Any]:
    """The prior baseline joins the ensemble so that two members can disagree."""
    return {**base, "baselines": ["prior"],
            "ensemble": {**base["ensemble"], "selection": "all",
                         "include_baselines": True},
            "explain": {"samples_per_label": 1},
            "embed": {"n_neighbors": 5, "color_label": "aromatic"},
            "novelty": {"epochs": 2, "top_k": 4}}


@pytest.fixture(scope="module")
def analysed(tiny_mars2: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from spectrovision.config.schema import validate_config

    workdir = tmp_path_factory.mktemp("analysis")
    base = validate_config({  # tests/conftest.py tiny_config with one model
        **tiny_workflow_config(tiny_mars2, workdir / "results"),
        "models": {"tiny_pool": TINY_MODELS["tiny_pool"]},
    })
    config = analysis_config(base)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    plan = dry_run_jobs(workdir, "all")
    targets = [str(Path(config["results"]) / p) for p in (
        "explain/tiny_pool/fold0/gradcam.png", "embed/tiny_pool/fold0/umap.png",
        "novelty/novelty_scores.csv")]
    run_snakemake(workdir, *targets, extra=("--quiet", "all"))
    return {"workdir": workdir, "results": Path(config["results"]), "plan": plan,
            "config": config}


def test_default_target_plans_the_three_stages(analysed):
    for rule in ("explain", "embed", "novelty"):
        assert rule in analysed["plan"]


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
        plan = dry_run_jobs(analysed["workdir"], "all", extra=("--forceall",))
    finally:
        (analysed["workdir"] / "config.yaml").write_text(yaml.safe_dump(analysed["config"]))
    for rule in ("explain", "embed", "novelty"):
        assert rule not in plan
