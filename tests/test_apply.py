"""Apply mode: a trained run's members predict a new data set without training anything.

One tiny training run (a CNN, a baseline, a fitted baseline and a LightGBM member all in
the ensemble) is made once per module. Apply runs then point ``trained_results`` at it:
applied to the trained run's own data they reproduce its test predictions exactly; applied
to a new generated data set they predict every run, also when it has no labels (no label
file, or ``labels_files: []``); a config that differs from the trained
recipe is refused at parse time, naming the key.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from spectrovision.apply.manifest import applied_config, read_manifest
from spectrovision.config.schema import validate_config
from spectrovision.synth.demo import generate_demo_dataset
from spectrovision.errors import ConfigError, InputError
from support import (TINY_REPRESENTATION, dry_run_jobs, run_snakemake, tiny_workflow_config,
                     unlabelled_batch, write_config)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
MEMBERS = ["tiny_pool", "conditional_prior", "logistic_l2", "lgbm"]
TRAIN_STAGES = {"train", "predict", "folds", "labelled_sheet", "gather_model", "baseline",
                "tabular", "ensemble", "submission", "trained_manifest"}


def trained_config(data_dir: Path) -> dict[str, Any]:
    config = tiny_workflow_config(data_dir, "trained")
    config["models"] = {"tiny_pool": config["models"]["tiny_pool"]}
    config["baselines"] = ["prior", "conditional_prior", "logistic_l2"]
    config["baseline_settings"] = {"logistic_l2": {"time_bins": 4, "c_grid": [0.01, 1.0]}}
    config["tabular"] = {"lgbm": {"representation": "tiny", "time_bins": 4,
                                  "metadata_columns": ["derivatized"], "n_estimators": 20,
                                  "min_child_samples": 3}}
    config["ensemble"] = {"selection": "list", "members": MEMBERS, "include_baselines": True}
    for stage in ("explain", "embed", "novelty"):
        config[stage] = {"enabled": False}
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_mars2: Path) -> Path:
    """A workdir holding a complete tiny training run in trained/."""
    workdir = tmp_path_factory.mktemp("apply")
    write_config(workdir / "train.yaml", trained_config(tiny_mars2))
    run_snakemake(workdir, config="train.yaml")
    return workdir


def apply_config(workdir: Path, data_dir: Path, results: str, **extra: Any) -> Path:
    config = {"results": results, "trained_results": "trained",
              "data": {"layout": "mars2", "dir": str(data_dir)},
              "workflow": {"shards": 2, "train_threads": 1}, **extra}
    return write_config(workdir / f"{results}.yaml", config)


def test_the_trained_run_writes_a_manifest_and_fitted_members(trained):
    manifest = read_manifest(trained / "trained")
    assert manifest["selection"]["members"] == MEMBERS
    assert manifest["members"]["tiny_pool"]["files"] == [
        "models/tiny_pool/fold0/model.pt", "models/tiny_pool/fold1/model.pt"]
    for name in ("prior", "conditional_prior", "logistic_l2", "lgbm"):
        assert (trained / "trained" / "members" / name / "fitted.pkl").is_file()
    assert manifest["image_shapes"]["tiny"][1:] == [64, 32]


def test_applied_to_its_own_data_the_trained_predictions_come_back(trained, tiny_mars2):
    config = apply_config(trained, tiny_mars2, "same")
    jobs = dry_run_jobs(trained, config=config)
    assert not set(jobs) & TRAIN_STAGES, jobs
    assert jobs["apply_model"] == 2 and jobs["apply_gather"] == 1
    assert jobs["apply_member"] == 3 and jobs["apply_ensemble"] == 1
    run_snakemake(trained, config=config)
    test = pd.read_parquet(trained / "trained" / "ensemble" / "test_logits.parquet")
    applied = pd.read_parquet(trained / "same" / "applied" / "ensemble_logits.parquet")
    labels = [c for c in test.columns if c != "sample_id"]
    got = applied.set_index("sample_id").loc[test["sample_id"], labels].to_numpy()
    np.testing.assert_allclose(got, test[labels].to_numpy(), rtol=0, atol=1e-5)
    for member in MEMBERS:  # every member, not only their combination
        trained_test = pd.read_parquet(trained / "trained" / "members" / member /
                                       "test_logits.parquet")
        member_applied = pd.read_parquet(trained / "same" / "applied" / member /
                                         "logits.parquet").set_index("sample_id")
        np.testing.assert_allclose(
            member_applied.loc[trained_test["sample_id"], labels].to_numpy(),
            trained_test[labels].to_numpy(), rtol=0, atol=1e-5, err_msg=member)
    # labelled samples of the applied data set are scored, members and ensemble
    scores = pd.read_csv(trained / "same" / "applied" / "scores.csv")
    assert set(scores["member"]) == {*MEMBERS, "ensemble"}
    # provenance leads back to the trained weights and fitted members, with their hashes
    record = json.loads((trained / "same" / "predictions.csv.provenance.json").read_text())
    text = json.dumps(record)
    assert "trained/models/tiny_pool/fold1/model.pt" in text
    assert "trained/members/lgbm/fitted.pkl" in text
    assert record["extra"]["trained_results"] == "trained"


def test_a_new_data_set_is_predicted_without_training(trained, tmp_path_factory):
    new_dir = generate_demo_dataset(tmp_path_factory.mktemp("new_runs"), n_runs=12, seed=5,
                                    n_scans=(40, 60))
    config = apply_config(trained, new_dir, "new")
    run_snakemake(trained, config=config)
    predictions = pd.read_csv(trained / "new" / "predictions.csv")
    metadata = pd.read_csv(new_dir / "metadata.csv")
    assert sorted(predictions["sample_id"]) == sorted(metadata["sample_id"])
    probs = predictions.drop(columns="sample_id").to_numpy()
    assert np.isfinite(probs).all() and ((probs > 0) & (probs < 1)).all()
    # the new runs were rendered, the trained ones were not touched
    assert (trained / "new" / "render" / "tiny").is_dir()
    assert not (trained / "new" / "models").exists()
    info = json.loads((trained / "new" / "applied" / "tiny_pool" / "fold0" / "tta.json")
                      .read_text())
    assert info["n_samples"] == len(metadata) and len(info["tta_widths"]) == 2


def test_an_unlabelled_batch_is_predicted(trained, tmp_path_factory):
    """A batch without labels: no label file at all (labels_files left out), and the same
    runs with their label files present but labels_files: [] (so none is read). Both
    predict every sample, and score none."""
    with_files = unlabelled_batch(generate_demo_dataset(
        tmp_path_factory.mktemp("unlabelled"), n_runs=8, seed=11, n_scans=(40, 60)),
        keep_label_files=True)
    bare = tmp_path_factory.mktemp("bare") / "data"
    shutil.copytree(with_files, bare)
    for path in bare.glob("*_labels.csv"):
        path.unlink()
    metadata = pd.read_csv(with_files / "metadata.csv", dtype=str)
    for results, data_dir, listed in (("bare", bare, {}),
                                      ("empty_list", with_files, {"labels_files": []})):
        config = apply_config(trained, data_dir, results,
                              data={"layout": "mars2", "dir": str(data_dir), **listed})
        run_snakemake(trained, config=config)
        predictions = pd.read_csv(trained / results / "predictions.csv", dtype={"sample_id": str})
        assert list(predictions["sample_id"]) == list(metadata["sample_id"]), results
        probs = predictions.drop(columns="sample_id")
        assert list(probs.columns) == read_manifest(trained / "trained")["labels"]
        assert np.isfinite(probs.to_numpy()).all()
        assert pd.read_csv(trained / results / "applied" / "scores.csv").empty, results


@pytest.mark.parametrize(("extra", "key"), [
    ({"representations": {"tiny": {**TINY_REPRESENTATION, "n_x": 16}}},
     "representations/tiny/n_x"),
    ({"predict": {"tta_n_widths": 3}}, "predict/tta_n_widths"),
    ({"qc": {"drop_masses": []}}, "qc/drop_masses"),
    ({"task": "multiclass"}, "task"),
])
def test_a_recipe_that_differs_from_the_trained_one_is_refused(trained, tiny_mars2, extra, key):
    config = apply_config(trained, tiny_mars2, "refused", **extra)
    proc = run_snakemake(trained, config=config, extra=("--dry-run",), check=False)
    assert proc.returncode != 0
    assert f"config key '{key}'" in proc.stdout + proc.stderr


def test_other_labels_are_refused(trained, tiny_mars2, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_mars2, data)
    for path in data.glob("*_labels.csv"):
        table = pd.read_csv(path)
        table.drop(columns=table.columns[-1]).to_csv(path, index=False)
    config = apply_config(trained, data, "labels")
    proc = run_snakemake(trained, config=config, extra=("--dry-run",), check=False)
    assert proc.returncode != 0 and "config key 'data/labels_files'" in proc.stdout + proc.stderr


def test_a_free_key_and_an_equal_recipe_key_are_accepted(trained, tiny_mars2):
    manifest = read_manifest(trained / "trained")
    raw = {"results": str(trained / "ok"), "trained_results": str(trained / "trained"),
           "data": {"layout": "mars2", "dir": str(tiny_mars2)},
           "predict": {"batch_size": 3, "tta_n_widths": 2}, "qc": {"check_md5": False},
           "representations": manifest["recipe"]["representations"]}
    cfg = applied_config(validate_config(raw), raw, manifest)
    assert cfg["predict"]["batch_size"] == 3 and cfg["qc"]["check_md5"] is False
    assert cfg["models"] == {} and cfg["baselines"] == [] and cfg["tabular"] == {}
    assert list(cfg["representations"]) == ["tiny"]
    same = {**raw, "results": str(trained / "trained")}
    with pytest.raises(ConfigError, match="config key 'results'"):
        applied_config(validate_config(same), same, manifest)
    other = {**raw, "data": {"layout": "mars1", "dir": str(tiny_mars2)}}
    with pytest.raises(ConfigError, match="config key 'data/layout'"):
        applied_config(validate_config(other), other, manifest)
    with pytest.raises(ConfigError, match="trained_manifest.json does not exist"):
        read_manifest(trained / "nothing-here")


def test_renders_of_another_shape_are_refused_by_the_model(trained):
    import torch

    from spectrovision.learn.imageset import ImageSet
    from spectrovision.learn.predict import predict_id_sets
    from spectrovision.learn.settings import PredictSettings, as_settings

    images = ImageSet(["a"], torch.zeros((1, 2, 64, 16), dtype=torch.float16))
    weights = trained / "trained" / "models" / "tiny_pool" / "fold0" / "model.pt"
    tta = as_settings(PredictSettings, validate_config({})["predict"], "predict")
    with pytest.raises(InputError, match="was trained on images of shape"):
        predict_id_sets(weights, images, [["a"]], tta)
