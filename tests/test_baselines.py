"""Baselines: fitted per fold on the same folds as the models, each beating a weaker one
where its signal lies (metadata for the conditional prior, the image for the LR)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectrovision.ensemble.baselines import (REGISTRY, Baseline, BenchmarkLR, ConditionalPrior,
                                              Prior, baseline_class, baseline_representation,
                                              group_column, register_baseline, run_baseline)
from spectrovision.ensemble.members import coarse_time_features, cross_fit, load_stack_features
from spectrovision.data.sheet import sample_sheet
from spectrovision.errors import InputError
from spectrovision.metrics import mean_log_loss, sigmoid

LABELS = ["a", "b"]
CLIP = 1e-4


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"S{i:03d}" for i in range(n)]
    group = rng.integers(0, 2, n)
    y = np.column_stack([rng.random(n) < np.where(group == 1, 0.9, 0.1),  # label a follows group
                         rng.random(n) < 0.3]).astype(float)
    labelled = ids[:90]
    labels = pd.DataFrame(y[:90], columns=LABELS, index=pd.Index(labelled, name="sample_id"))
    folds = pd.DataFrame({"sample_id": labelled, "fold": np.arange(90) % 3})
    folds.loc[:5, "fold"] = -1  # always trains
    return ids, group, y, labels, folds, ids[90:]


def _oof_loss(oof, labels):
    y = labels.loc[oof["sample_id"], LABELS].to_numpy()
    return mean_log_loss(y, sigmoid(oof[LABELS].to_numpy()))


def test_prior_predicts_the_training_fold_prevalence():
    ids, _, _, labels, folds, test_ids = _data()
    oof, test = cross_fit(Prior(), ids, labels, folds, test_ids, LABELS, CLIP)
    assert len(oof) == int((folds["fold"] >= 0).sum()) and "fold" in oof.columns
    row = oof.iloc[0]
    train = folds.loc[folds["fold"] != row["fold"], "sample_id"]
    expected = labels.loc[train, LABELS].mean().to_numpy()
    np.testing.assert_allclose(sigmoid(row[LABELS].to_numpy(float)), expected, rtol=1e-9)
    assert list(test["sample_id"]) == test_ids
    fold_priors = [labels.loc[folds.loc[folds["fold"] != k, "sample_id"], LABELS].mean()
                   for k in range(3)]
    np.testing.assert_allclose(sigmoid(test[LABELS].to_numpy(float)[0]),
                               np.mean(fold_priors, axis=0), rtol=1e-9)


def test_conditional_prior_beats_prior_when_metadata_predicts_a_label():
    ids, group, _, labels, folds, test_ids = _data()
    prior, _ = cross_fit(Prior(), ids, labels, folds, test_ids, LABELS, CLIP)
    cond, _ = cross_fit(ConditionalPrior(group, smoothing=2.0), ids, labels,
                        folds, test_ids, LABELS, CLIP)
    assert _oof_loss(cond, labels) < _oof_loss(prior, labels) - 0.1


def test_conditional_prior_shrinks_toward_the_prior_and_handles_unseen_groups():
    groups = ["x", "x", "y", "z"]
    y = np.array([[1.0], [1.0], [0.0]])
    heavy = ConditionalPrior(groups, smoothing=1e9).fit_predict(np.arange(3), y, np.arange(4))
    light = ConditionalPrior(groups, smoothing=0.0).fit_predict(np.arange(3), y, np.arange(4))
    np.testing.assert_allclose(heavy[:, 0], 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(light[:, 0], [1.0, 1.0, 0.0, 2 / 3])


def test_group_column_prefers_derivatized_then_instrument_type():
    sheet = pd.DataFrame({"sample_id": ["a"], "instrument_type": ["commercial"]})
    assert group_column(sheet, None) == "instrument_type"
    assert group_column(sheet.assign(derivatized=1), None) == "derivatized"
    assert group_column(sheet.drop(columns="instrument_type"), None) is None
    with pytest.raises(InputError, match="nope"):
        group_column(sheet, "nope")


def test_coarse_time_features_max_pool_channel_zero():
    rng = np.random.default_rng(0)
    stack = rng.random((3, 2, 4, 10)).astype(np.float16)
    features = coarse_time_features(stack, 3, chunk=2)
    manual = np.stack([stack[:, 0, :, a:b].astype(np.float32).max(axis=2)
                       for a, b in ((0, 3), (3, 7), (7, 10))], axis=2).reshape(3, 12)
    np.testing.assert_array_equal(features, manual)


def test_benchmark_lr_beats_prior_when_the_image_carries_the_signal(tmp_path):
    ids, _, y, labels, folds, test_ids = _data(seed=1)
    rng = np.random.default_rng(2)
    stack = rng.random((len(ids), 1, 6, 16)).astype(np.float16) * 0.2
    stack[y[:, 1] == 1, 0, 3, 4:6] += 1.0  # label b lights mass 3 early in the run
    order = rng.permutation(len(ids))  # stacks list samples in their own order
    halves = [order[:50], order[50:]]
    paths = []
    for k, rows in enumerate(halves):
        np.save(tmp_path / f"stack_{k}.npy", stack[rows])
        pd.DataFrame({"sample_id": [ids[i] for i in rows]}).to_csv(tmp_path / f"stack_{k}.csv",
                                                                    index=False)
        paths.append((tmp_path / f"stack_{k}.npy", tmp_path / f"stack_{k}.csv"))
    features = load_stack_features([p for p, _ in paths], [c for _, c in paths], 4, ids)
    np.testing.assert_array_equal(features, coarse_time_features(stack, 4))
    lr, test = cross_fit(BenchmarkLR(features, c=1.0), ids, labels, folds, test_ids,
                         LABELS, CLIP)
    prior, _ = cross_fit(Prior(), ids, labels, folds, test_ids, LABELS, CLIP)
    yb = labels.loc[lr["sample_id"], ["b"]].to_numpy()
    loss_lr = mean_log_loss(yb, sigmoid(lr[["b"]].to_numpy()))
    loss_prior = mean_log_loss(yb, sigmoid(prior[["b"]].to_numpy()))
    assert loss_lr < loss_prior - 0.2
    test_pred = sigmoid(test["b"].to_numpy()) > 0.5
    np.testing.assert_array_equal(test_pred, y[90:, 1] == 1)


def test_missing_render_of_a_sample_is_a_clear_error(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((1, 1, 2, 4), dtype=np.float16))
    pd.DataFrame({"sample_id": ["A"]}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(InputError, match="B"):
        load_stack_features([tmp_path / "s.npy"], [tmp_path / "s.csv"], 2, ["A", "B"])


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.shared_data
def test_conditional_prior_on_derivatized_beats_prior_on_real_mars2_labels():
    data_dir = SHARED / "mars2-labels"
    if not (data_dir / "metadata.csv").exists():
        pytest.skip("shared data not available")
    sheet = sample_sheet({"dir": str(data_dir), "layout": "mars2", "metadata_file": "metadata.csv",
                          "labels_files": ["train_labels.csv"]})
    labels, names = sheet.attrs["label_table"], sheet.attrs["labels"]
    folds = pd.DataFrame({"sample_id": labels.index, "fold": np.arange(len(labels)) % 5})
    test_ids = list(sheet.loc[~sheet["labelled"], "sample_id"])
    losses = {}
    for name, fit_predict in (("prior", Prior()),
                              ("conditional", ConditionalPrior(
                                  sheet["derivatized"].tolist(), smoothing=10.0))):
        oof, test = cross_fit(fit_predict, list(sheet["sample_id"]), labels, folds, test_ids,
                              names, CLIP)
        assert len(test) == len(test_ids) == 775  # val + test samples
        y = labels.loc[oof["sample_id"], names].to_numpy()
        losses[name] = mean_log_loss(y, sigmoid(oof[names].to_numpy()))
    assert losses["conditional"] < losses["prior"] - 0.01


# --- the registry: a new baseline is one registered class ---------------------------------

@pytest.fixture
def throwaway_baseline(monkeypatch):
    """A baseline registered for one test only (the registry is restored afterwards)."""
    monkeypatch.setattr("spectrovision.ensemble.baselines.REGISTRY", dict(REGISTRY))

    @register_baseline("quarter")
    class Quarter(Baseline):
        """Predicts 1/4 for every label, whatever it was fitted on."""

        def fit_predict(self, train, y, predict):
            return np.full((len(predict), y.shape[1]), 0.25)

    return Quarter


def test_a_registered_baseline_runs_through_cross_fit_and_run_baseline(throwaway_baseline,
                                                                        tiny_mars2, tmp_path):
    ids, _, _, labels, folds, test_ids = _data()
    oof, test = cross_fit(throwaway_baseline(), ids, labels, folds, test_ids, LABELS, CLIP)
    np.testing.assert_allclose(sigmoid(oof[LABELS].to_numpy()), 0.25, rtol=1e-12)
    assert list(test["sample_id"]) == test_ids
    assert baseline_class("quarter") is throwaway_baseline
    cfg = {"baseline_settings": {}, "representations": {"r": {}}}
    assert baseline_representation("quarter", cfg) is None

    data_cfg = {"layout": "mars2", "dir": str(tiny_mars2)}
    sheet = sample_sheet(data_cfg)
    labelled = list(sheet.loc[sheet["labelled"], "sample_id"])
    folds_csv = tmp_path / "folds.csv"
    pd.DataFrame({"sample_id": labelled, "fold": np.arange(len(labelled)) % 2}).to_csv(
        folds_csv, index=False)
    outputs = {"oof": tmp_path / "oof.parquet", "test": tmp_path / "test.parquet"}
    run_baseline(name="quarter", inputs={"folds": folds_csv, "stacks": [], "stack_ids": []},
                 outputs=outputs, settings={}, data=data_cfg, labels=sheet.attrs["labels"],
                 seed=0, clip=CLIP, task="multilabel")
    written = pd.read_parquet(outputs["oof"])
    assert sorted(written["sample_id"]) == sorted(labelled)
    np.testing.assert_allclose(sigmoid(written[sheet.attrs["labels"]].to_numpy()), 0.25)
    assert len(pd.read_parquet(outputs["test"])) == int((~sheet["labelled"]).sum())


def test_registry_matches_the_schema_and_refuses_unknown_or_twice_registered_names():
    from spectrovision.config.schema import load_schema

    schema = load_schema()["properties"]
    assert tuple(REGISTRY) == tuple(schema["baselines"]["items"]["enum"])
    with_settings = {n for n, cls in REGISTRY.items() if cls.settings_class is not None}
    assert with_settings == set(schema["baseline_settings"]["properties"])
    with pytest.raises(ValueError, match="unknown baseline 'nope'"):
        baseline_class("nope")
    with pytest.raises(ValueError, match="twice"):
        register_baseline("prior")(Prior)


def test_baseline_representation_asks_the_registry():
    from spectrovision.config.schema import validate_config
    from spectrovision.errors import ConfigError

    cfg = validate_config({"representations": {"b": {}, "a": {}}})
    assert baseline_representation("benchmark_lr", cfg) == "a"
    assert baseline_representation("prior", cfg) is None
    assert baseline_representation("conditional_prior", cfg) is None
    cfg["baseline_settings"]["benchmark_lr"]["representation"] = "zzz"
    with pytest.raises(ConfigError, match="'baseline_settings/benchmark_lr/representation'"):
        baseline_representation("benchmark_lr", cfg)
