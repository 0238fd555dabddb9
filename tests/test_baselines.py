"""Baselines: fitted per fold on the same folds as the models, each beating a weaker one
where its signal lies (metadata for the conditional prior, the image for the LR)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectrovision.ensemble.baselines import (BASELINES, Baseline, BenchmarkLR, ConditionalPrior,
                                              LogisticL2, Prior, baseline_class,
                                              baseline_representation, baseline_settings,
                                              group_column, register_baseline, run_baseline)
from spectrovision.ensemble.members import (Renders, coarse_time_features, cross_fit,
                                            load_stack_features)
from spectrovision.data.sheet import sample_sheet
from spectrovision.errors import ConfigError, InputError
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



# --- logistic_l2: the tuned L2 yardstick --------------------------------------------------

GRID = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0]


def _weak_pattern_data(n=240, n_labelled=200, seed=0):
    """Label b follows a latent score that adds weakly (0.35 sd) to 48 cells of the render,
    too weak to read from any one cell; label a is noise. Features: 12 masses x 8 bins."""
    rng = np.random.default_rng(seed)
    ids = [f"S{i:03d}" for i in range(n)]
    z = rng.normal(size=n)
    stack = rng.normal(size=(n, 1, 12, 16))
    stack[:, 0, :6, :] += 0.35 * z[:, None, None]  # masses 0-5, whole run: 6 x 8 bins
    y = np.column_stack([rng.random(n) < 0.3, z + 0.3 * rng.normal(size=n) > 0.3]).astype(float)
    labelled = ids[:n_labelled]
    labels = pd.DataFrame(y[:n_labelled], columns=LABELS,
                          index=pd.Index(labelled, name="sample_id"))
    folds = pd.DataFrame({"sample_id": labelled, "fold": np.arange(n_labelled) % 4})
    features = coarse_time_features(stack.astype(np.float32), 8)
    return ids, features, labels, folds, ids[n_labelled:]


def _label_loss(oof, labels, label="b"):
    y = labels.loc[oof["sample_id"], [label]].to_numpy()
    return mean_log_loss(y, sigmoid(oof[[label]].to_numpy()))


def test_logistic_l2_beats_prior_and_fixed_c_at_either_end_on_a_weak_spread_pattern():
    ids, features, labels, folds, test_ids = _weak_pattern_data()
    tuned = LogisticL2(features, GRID, inner_folds=3)
    oof, test = cross_fit(tuned, ids, labels, folds, test_ids, LABELS, CLIP)
    prior, _ = cross_fit(Prior(), ids, labels, folds, test_ids, LABELS, CLIP)
    fixed, _ = cross_fit(LogisticL2(features, [GRID[0]]), ids, labels, folds, test_ids,
                         LABELS, CLIP)
    loose, _ = cross_fit(LogisticL2(features, [GRID[-1]]), ids, labels, folds, test_ids,
                         LABELS, CLIP)
    loss, loss_prior, loss_fixed, loss_loose = (_label_loss(t, labels)
                                                for t in (oof, prior, fixed, loose))
    assert loss < loss_prior - 0.15, (loss, loss_prior)
    assert loss < loss_fixed - 0.05, (loss, loss_fixed)  # too strong a penalty underfits
    assert loss < loss_loose - 0.05, (loss, loss_loose)  # too weak a one overfits
    chosen_b = [c[1] for c in tuned.chosen]
    assert len(chosen_b) == 4 and min(chosen_b) > GRID[0]  # the inner CV moved off the grid's end
    assert list(test["sample_id"]) == test_ids


def test_logistic_l2_chooses_c_without_the_held_out_rows():
    ids, features, labels, folds, _ = _weak_pattern_data()
    row = {s: i for i, s in enumerate(ids)}
    held = folds["fold"] == 0
    train = np.array([row[s] for s in folds.loc[~held, "sample_id"]])
    held_rows = np.array([row[s] for s in folds.loc[held, "sample_id"]])
    unlabelled = np.arange(200, 240)
    y = labels.loc[folds.loc[~held, "sample_id"], LABELS].to_numpy()
    predict = np.concatenate([held_rows, unlabelled])
    changed = features.copy()
    changed[held_rows] = np.random.default_rng(5).normal(size=changed[held_rows].shape) * 10
    first, second = LogisticL2(features, GRID), LogisticL2(changed, GRID)
    p1, p2 = first.fit_predict(train, y, predict), second.fit_predict(train, y, predict)
    np.testing.assert_array_equal(first.chosen[0], second.chosen[0])
    np.testing.assert_array_equal(p1[len(held_rows):], p2[len(held_rows):])
    assert not np.allclose(p1[:len(held_rows)], p2[:len(held_rows)])


def test_logistic_l2_is_deterministic():
    ids, features, labels, folds, test_ids = _weak_pattern_data(seed=3)
    runs = [cross_fit(LogisticL2(features, GRID, seed=7), ids, labels, folds, test_ids, LABELS,
                      CLIP) for _ in range(2)]
    for first, second in zip(*runs):
        pd.testing.assert_frame_equal(first, second, check_exact=True)


def test_logistic_l2_predicts_the_prevalence_of_a_single_class_label():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(30, 5))
    y = np.column_stack([np.ones(20), rng.random(20) < 0.5]).astype(float)
    model = LogisticL2(features, GRID)
    probs = model.fit_predict(np.arange(20), y, np.arange(20, 30))
    np.testing.assert_array_equal(probs[:, 0], 1.0)
    assert np.isnan(model.chosen[0][0]) and not np.isnan(model.chosen[0][1])
    assert "a=prevalence" in model.describe(LABELS)[0]


def test_logistic_l2_runs_from_the_config_and_logs_its_choice(tiny_mars2, tmp_path, caplog):
    from spectrovision.config.schema import validate_config

    cfg = validate_config({"representations": {"r": {}},
                           "baselines": ["prior", "logistic_l2"]})
    settings = cfg["baseline_settings"]["logistic_l2"]
    typed = baseline_settings("logistic_l2", settings)
    assert (typed.time_bins, list(typed.c_grid), typed.inner_folds) == (22, GRID, 3)
    assert baseline_representation("logistic_l2", cfg) == "r"

    data_cfg = {"layout": "mars2", "dir": str(tiny_mars2)}
    sheet = sample_sheet(data_cfg)
    names = sheet.attrs["labels"]
    ids = list(sheet["sample_id"])
    np.save(tmp_path / "stack.npy",
            np.random.default_rng(0).random((len(ids), 1, 4, 22)).astype(np.float16))
    pd.DataFrame({"sample_id": ids}).to_csv(tmp_path / "stack.csv", index=False)
    labelled = list(sheet.loc[sheet["labelled"], "sample_id"])
    folds_csv = tmp_path / "folds.csv"
    pd.DataFrame({"sample_id": labelled, "fold": np.arange(len(labelled)) % 2}).to_csv(
        folds_csv, index=False)
    baseline = LogisticL2.prepare(sheet, typed, Renders((str(tmp_path / "stack.npy"),),
                                                        (str(tmp_path / "stack.csv"),)), 0)
    assert baseline.features.shape == (len(ids), 4 * 22)
    outputs = {"oof": tmp_path / "oof.parquet", "test": tmp_path / "test.parquet"}
    with caplog.at_level("INFO", logger="spectrovision.ensemble.baselines"):
        run_baseline(name="logistic_l2",
                     inputs={"folds": folds_csv, "stacks": [tmp_path / "stack.npy"],
                             "stack_ids": [tmp_path / "stack.csv"]},
                     outputs=outputs, settings=settings, data=data_cfg, labels=names, seed=0,
                     clip=CLIP, task="multilabel")
    assert sorted(pd.read_parquet(outputs["oof"])["sample_id"]) == sorted(labelled)
    assert len(pd.read_parquet(outputs["test"])) == int((~sheet["labelled"]).sum())
    logged = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("logistic_l2: fit ") for m in logged) == 2
    assert f"{names[0]}=" in next(m for m in logged if m.startswith("logistic_l2: fit 1 of 2"))


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
    monkeypatch.setattr("spectrovision.ensemble.baselines.BASELINES", BASELINES.copy())

    @register_baseline("quarter")
    class Quarter(Baseline):
        """Predicts 1/4 for every label, whatever it was fitted on."""

        def fit(self, train, y):
            return y.shape[1]

        def predict(self, state, rows):
            return np.full((len(rows), state), 0.25)

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
    assert BASELINES.names() == schema["baselines"]["items"]["enum"]
    with_settings = {n for n in BASELINES if BASELINES.get(n).settings_class is not None}
    assert with_settings == set(schema["baseline_settings"]["properties"])
    with pytest.raises(ConfigError, match="'baselines': unknown baseline 'nope'. Fix: choose "
                       "one of prior, conditional_prior, benchmark_lr, logistic_l2"):
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
    assert baseline_representation("logistic_l2", cfg) == "a"
    cfg["baseline_settings"]["benchmark_lr"]["representation"] = "zzz"
    with pytest.raises(ConfigError, match="'baseline_settings/benchmark_lr/representation'"):
        baseline_representation("benchmark_lr", cfg)
