"""Tabular members: per-label LightGBM on render + metadata features, fitted per fold like
the baselines; deterministic; SHAP contributions summed into an importance table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spectrovision.ensemble.baselines import Prior
from spectrovision.ensemble.members import cross_fit
from spectrovision.config.schema import derive_seed, validate_config
from spectrovision.config.typed import as_dict
from spectrovision.errors import ConfigError, InputError
from spectrovision.metrics import log_loss_per_label, mean_log_loss, sigmoid
from spectrovision.ensemble.tabular import (Features, GBMSettings, RenderFeatures,
                                            build_features, contributions, fit_booster,
                                            fit_tabular, image_feature_names,
                                            metadata_features, resolve_tabular, run_tabular,
                                            shap_summary_plot)

pytest.importorskip("lightgbm")

LABELS = ["a", "b", "c"]
CLIP = 1e-4
FAST = GBMSettings(n_estimators=40, learning_rate=0.1, num_leaves=7, min_child_samples=5,
                   feature_fraction=0.8, seed=3, early_stopping_rounds=None,
                   validation_fraction=0.2, prior_fallback=True, n_seeds=1, num_threads=1)


def _data(n=300, n_labelled=240, seed=0):
    """Features with a planted signal: label a = feature 0 > 0, label b = metadata group,
    label c = noise."""
    rng = np.random.default_rng(seed)
    ids = [f"S{i:03d}" for i in range(n)]
    x = rng.normal(size=(n, 8))
    group = rng.integers(0, 2, n)
    y = np.column_stack([x[:, 0] > 0, rng.random(n) < np.where(group == 1, 0.85, 0.15),
                         rng.random(n) < 0.3]).astype(float)
    features = Features(np.column_stack([x, group]), [*image_feature_names(2, 4), "grp"],
                        n_image=8)
    labelled = ids[:n_labelled]
    labels = pd.DataFrame(y[:n_labelled], columns=LABELS,
                          index=pd.Index(labelled, name="sample_id"))
    folds = pd.DataFrame({"sample_id": labelled, "fold": np.arange(n_labelled) % 3})
    folds.loc[:4, "fold"] = -1  # always trains
    return ids, features, labels, folds, ids[n_labelled:]


def _label_loss(oof, labels, label):
    y = labels.loc[oof["sample_id"], [label]].to_numpy()
    return mean_log_loss(y, sigmoid(oof[[label]].to_numpy()))


def test_learns_a_planted_signal_and_gathers_like_the_other_members():
    ids, features, labels, folds, test_ids = _data()
    result = fit_tabular(features, ids, labels, folds, test_ids, LABELS, FAST, CLIP)
    prior, _ = cross_fit(Prior(), ids, labels, folds, test_ids, LABELS, CLIP)
    assert list(result.oof.columns) == ["sample_id", "fold", *LABELS]
    assert len(result.oof) == int((folds["fold"] >= 0).sum())
    assert list(result.test["sample_id"]) == test_ids
    for label in ("a", "b"):
        assert _label_loss(result.oof, labels, label) < _label_loss(prior, labels, label) - 0.2
    imp = result.importance.set_index("feature")
    assert imp.loc["m0_t0", "a"] == imp["a"].max()  # feature 0 carries label a
    assert imp.loc["grp", "b"] == imp["b"].max()  # metadata carries label b
    assert imp.loc["grp", "kind"] == "metadata" and imp.loc["m0_t0", "kind"] == "image"


def test_same_inputs_give_identical_outputs():
    ids, features, labels, folds, test_ids = _data(seed=4)
    first = fit_tabular(features, ids, labels, folds, test_ids, LABELS, FAST, CLIP)
    second = fit_tabular(features, ids, labels, folds, test_ids, LABELS, FAST, CLIP)
    pd.testing.assert_frame_equal(first.oof, second.oof, check_exact=True)
    pd.testing.assert_frame_equal(first.test, second.test, check_exact=True)
    pd.testing.assert_frame_equal(first.importance, second.importance, check_exact=True)
    other = fit_tabular(features, ids, labels, folds, test_ids, LABELS,
                        GBMSettings(**{**FAST.__dict__, "seed": 99}), CLIP)
    assert not np.array_equal(first.oof[LABELS].to_numpy(), other.oof[LABELS].to_numpy())


def test_a_label_with_one_class_in_a_training_fold_gets_the_fold_prior():
    ids, features, labels, folds, test_ids = _data(seed=2)
    labels = labels.copy()
    fold0 = folds.loc[folds["fold"] == 0, "sample_id"]
    labels["c"] = 0.0
    labels.loc[fold0[:3], "c"] = 1.0  # positives only in fold 0: other training folds are all 0
    result = fit_tabular(features, ids, labels, folds, test_ids, LABELS, FAST, CLIP)
    in_fold0 = result.oof["fold"] == 0
    train0 = folds.loc[folds["fold"] != 0, "sample_id"]
    assert labels.loc[train0, "c"].sum() == 0
    np.testing.assert_allclose(sigmoid(result.oof.loc[in_fold0, "c"].to_numpy()), CLIP,
                               rtol=1e-6)  # prior 0, clipped
    assert np.isfinite(result.test[LABELS].to_numpy()).all()


def test_contributions_sum_to_the_raw_score_and_the_table_is_sane():
    ids, features, labels, folds, test_ids = _data(seed=5)
    y = labels["a"].to_numpy()
    x = features.values[: len(y)]
    booster = fit_booster(x, y, FAST, features.names)
    contrib = contributions(booster, x)
    assert contrib.shape == (len(y), len(features.names) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), booster.predict(x, raw_score=True),
                               atol=1e-9)
    result = fit_tabular(features, ids, labels, folds, test_ids, LABELS, FAST, CLIP)
    imp = result.importance
    assert list(imp.columns) == ["feature", "kind", "mean_abs_shap", *LABELS]
    assert sorted(imp["feature"]) == sorted(features.names)
    assert (imp[LABELS].to_numpy() >= 0).all()
    np.testing.assert_allclose(imp["mean_abs_shap"], imp[LABELS].mean(axis=1))
    assert imp["mean_abs_shap"].is_monotonic_decreasing
    fig = shap_summary_plot(imp, LABELS)
    assert len(fig.axes[0].patches) == len(features.names)  # fewer than 20: all drawn


def test_metadata_columns_numbers_text_and_missing():
    sheet = pd.DataFrame({"sample_id": ["A", "B", "C"], "derivatized": [1.0, None, 0.0],
                          "instrument_type": ["sam", "commercial", None]})
    meta = metadata_features(sheet, ["derivatized", "instrument_type"])
    np.testing.assert_array_equal(meta.values[:, 0], [1.0, np.nan, 0.0])
    np.testing.assert_array_equal(meta.values[:, 1], [1.0, 0.0, np.nan])
    assert meta.categorical == [1]
    with pytest.raises(InputError, match="'pressure'"):
        metadata_features(sheet, ["pressure"])


def test_build_features_adds_metadata_after_the_render_features(tmp_path):
    ids = ["A", "B", "C"]
    stack = np.arange(3 * 1 * 2 * 4, dtype=np.float32).reshape(3, 1, 2, 4)
    np.save(tmp_path / "s.npy", stack)
    pd.DataFrame({"sample_id": ids[::-1]}).to_csv(tmp_path / "s.csv", index=False)
    sheet = pd.DataFrame({"sample_id": ids, "derivatized": [0, 1, 1]})
    feats = build_features(sheet, [tmp_path / "s.npy"], [tmp_path / "s.csv"], RenderFeatures(2),
                           ["derivatized"])
    assert feats.names == ["m0_t0", "m0_t1", "m1_t0", "m1_t1", "derivatized"]
    assert feats.n_image == 4 and feats.categorical == []
    np.testing.assert_array_equal(feats.values[0], [17, 19, 21, 23, 0])  # A = last stacked row


def test_resolve_tabular_fills_representation_and_seed_and_checks_columns():
    cfg = validate_config({"seed": 5, "representations": {"r2": {}, "r1": {}},
                           "tabular": {"gbm": {"metadata_columns": ["derivatized"]}}})
    settings = resolve_tabular(cfg, "gbm", ["sample_id", "derivatized"])
    assert settings.representation == "r1" and settings.time_bins == 16
    assert settings.seed == derive_seed(5, "tabular", "gbm")
    with pytest.raises(ConfigError, match="derivatized"):
        resolve_tabular(cfg, "gbm", ["sample_id", "instrument_type"])
    cfg["tabular"]["gbm"]["representation"] = "nope"
    with pytest.raises(ConfigError, match="nope"):
        resolve_tabular(cfg, "gbm")


def _tiny_member(tiny_mars2, tmp_path, settings, representation=None):
    """Run tabular member ``gbm`` (``settings``) over the tiny data set with a random 8 x 8
    render and 2 folds: (data config, sheet, labels, job inputs, outputs, result)."""
    from spectrovision.data.sheet import sample_sheet

    data_cfg = {"layout": "mars2", "dir": str(tiny_mars2)}
    sheet = sample_sheet(data_cfg)
    labels = sheet.attrs["labels"]
    labelled = list(sheet.loc[sheet["labelled"], "sample_id"])
    folds = tmp_path / "folds.csv"
    pd.DataFrame({"sample_id": labelled, "fold": np.arange(len(labelled)) % 2}).to_csv(
        folds, index=False)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "stack.npy", rng.random((len(sheet), 1, 8, 8)).astype(np.float16))
    sheet[["sample_id"]].to_csv(tmp_path / "stack.csv", index=False)
    outputs = {k: tmp_path / "out" / f for k, f in (
        ("oof", "oof_logits.parquet"), ("test", "test_logits.parquet"),
        ("importance", "shap_importance.csv"), ("summary", "shap_summary.png"),
        ("fitted", "fitted.pkl"))}
    cfg = validate_config({"representations": {"r": representation or {}},
                           "tabular": {"gbm": settings}})
    inputs = {"folds": folds, "stacks": [tmp_path / "stack.npy"],
              "stack_ids": [tmp_path / "stack.csv"]}
    result = run_tabular(name="gbm", inputs=inputs, outputs=outputs,
                         settings=as_dict(resolve_tabular(cfg, "gbm")), data=data_cfg,
                         labels=labels, clip=CLIP, num_threads=1, task="multilabel")
    return data_cfg, sheet, labels, inputs, outputs, result


def _assert_apply_predicts_the_test_table(tmp_path, data_cfg, labels, inputs, outputs, result):
    """Apply (a new sheet: here the same one) reads the member's fitted.pkl and predicts the
    unlabelled samples as the run's test table did."""
    from spectrovision.apply.predict import run_apply_member

    run_apply_member(name="gbm", inputs={"fitted": outputs["fitted"], **inputs},
                     outputs={"logits": tmp_path / "apply.parquet"}, data=data_cfg,
                     labels=labels)
    applied = pd.read_parquet(tmp_path / "apply.parquet").set_index("sample_id")
    test = result.test.set_index("sample_id")
    np.testing.assert_allclose(applied.loc[test.index, labels], test[labels], rtol=1e-9)


def test_run_tabular_writes_the_member_files(tiny_mars2, tmp_path):
    settings = {"time_bins": 4, "metadata_columns": ["derivatized"], "n_estimators": 10,
                "min_child_samples": 2, "seed": 1}
    _, sheet, labels, _, outputs, _ = _tiny_member(tiny_mars2, tmp_path, settings)
    labelled = list(sheet.loc[sheet["labelled"], "sample_id"])
    oof = pd.read_parquet(outputs["oof"])
    assert list(oof.columns) == ["sample_id", "fold", *labels] and len(oof) == len(labelled)
    assert len(pd.read_parquet(outputs["test"])) == int((~sheet["labelled"]).sum())
    imp = pd.read_csv(outputs["importance"])
    assert len(imp) == 8 * 4 + 1 and "derivatized" in set(imp["feature"])
    assert outputs["summary"].read_bytes()[:4] == b"\x89PNG"


def test_apply_reads_a_fitted_record_from_before_the_feature_options(tiny_mars2, tmp_path):
    """A record written before window_share_features, key_ion_ratios and augment_copies
    existed lacks their keys: apply takes them as off and predicts as the run did."""
    import pickle

    settings = {"time_bins": 4, "metadata_columns": ["derivatized"], "n_estimators": 10,
                "min_child_samples": 2, "seed": 1}
    data_cfg, _, labels, inputs, outputs, result = _tiny_member(tiny_mars2, tmp_path, settings)
    record = pickle.loads(outputs["fitted"].read_bytes())
    new_keys = ("window_share_features", "window_share_width", "key_ion_ratios", "key_ions",
                "augment_copies", "augment_trim_fraction", "augment_max_shift", "render_log",
                "render_log_floor", "window_columns")
    record["settings"] = {k: v for k, v in record["settings"].items() if k not in new_keys}
    outputs["fitted"].write_bytes(pickle.dumps(record))
    _assert_apply_predicts_the_test_table(tmp_path, data_cfg, labels, inputs, outputs, result)


@pytest.mark.slow
def test_tabular_member_runs_through_snakemake_into_the_ensemble(tiny_config, tmp_path):
    from pathlib import Path

    from support import run_snakemake, write_config

    config = {**tiny_config, "models": {}, "baselines": ["prior"],
              "tabular": {"gbm": {"time_bins": 4, "metadata_columns": ["derivatized"],
                                  "n_estimators": 20, "min_child_samples": 2}}}
    write_config(tmp_path / "config.yaml", config)
    results = Path(config["results"])
    run_snakemake(tmp_path, str(results / "ensemble" / "scores.csv"), extra=("--quiet", "all"))
    member = results / "members" / "gbm"
    for name in ("oof_logits.parquet", "test_logits.parquet", "shap_importance.csv",
                 "shap_summary.png"):
        assert (member / name).stat().st_size > 0, name
    scores = pd.read_csv(results / "ensemble" / "scores.csv")
    gbm = scores[scores["member"] == "gbm"]
    labels = [c for c in pd.read_parquet(member / "oof_logits.parquet").columns
              if c not in ("sample_id", "fold")]
    assert set(gbm["label"]) == {*labels, "mean"}
    assert np.isfinite(gbm["log_loss"]).all()
    # the ensemble chose among the tabular member (the only candidate)
    import json

    selection = json.loads((results / "ensemble" / "selection.json").read_text())
    assert selection["members"] == ["gbm"]


# --- peak features and early stopping (issue 12 item 5) -----------------------------------

def _peak_stack(n=240, n_mass=4, n_x=32, seed=0):
    """Images whose row 1 holds one Gaussian peak of random height in the first half of the
    columns (inside one of 2 coarse time bins); label a = the peak lies in the first quarter."""
    rng = np.random.default_rng(seed)
    cols = np.arange(n_x)
    stack = 0.1 * rng.random((n, 1, n_mass, n_x))
    centre = rng.integers(2, 14, n)
    height = rng.uniform(0.5, 1.5, n)
    stack[:, 0, 1] += height[:, None] * np.exp(-0.5 * ((cols - centre[:, None]) / 1.5) ** 2)
    y = np.column_stack([centre < 8, rng.random(n) < 0.3, rng.random(n) < 0.5]).astype(float)
    return stack.astype(np.float32), y


def test_peak_features_height_position_area_width_and_band_maxima():
    from spectrovision.ensemble.tabular import peak_feature_names, peak_features

    row = np.array([0.0, 1.0, 4.0, 3.0, 0.0, 0.0], dtype=np.float32)
    stack = np.stack([row, np.zeros(6, np.float32)])[None, None]  # (1, 1, 2 masses, 6 cols)
    stack = np.concatenate([stack, stack[..., ::-1]])  # second image: rows reversed in x
    feats = peak_features(stack, bands=3, chunk=1)
    names = peak_feature_names(2, 3)
    assert names[:4] == ["peak_height_m0", "peak_height_m1", "peak_pos_m0", "peak_pos_m1"]
    assert names[-1] == "peak_max_m1_b2" and len(names) == feats.shape[1] == 2 * (4 + 3)
    got = dict(zip(names, feats[0]))
    assert got["peak_height_m0"] == 4 and got["peak_pos_m0"] == pytest.approx(2 / 5)
    assert got["peak_area_m0"] == 8 and got["peak_width_m0"] == 2  # 4 and 3 exceed 2
    assert [got[f"peak_max_m0_b{b}"] for b in range(3)] == [1, 4, 0]
    assert got["peak_width_m1"] == 0 and got["peak_height_m1"] == 0  # a flat row
    assert dict(zip(names, feats[1]))["peak_pos_m0"] == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="peak_bands"):
        peak_features(stack, bands=7)


def _peak_member(tmp_path, peak_bands):
    stack, y = _peak_stack()
    ids = [f"S{i:03d}" for i in range(len(stack))]
    np.save(tmp_path / "s.npy", stack)
    pd.DataFrame({"sample_id": ids}).to_csv(tmp_path / "s.csv", index=False)
    sheet = pd.DataFrame({"sample_id": ids})
    features = build_features(sheet, [tmp_path / "s.npy"], [tmp_path / "s.csv"],
                              RenderFeatures(2, peak_bands))
    labels = pd.DataFrame(y, columns=LABELS, index=pd.Index(ids, name="sample_id"))
    folds = pd.DataFrame({"sample_id": ids, "fold": np.arange(len(ids)) % 3})
    return features, fit_tabular(features, ids, labels, folds, [], LABELS, FAST, CLIP), labels


def test_peak_features_reach_a_peak_position_that_coarse_cells_cannot_see(tmp_path):
    plain, without, labels = _peak_member(tmp_path, None)
    assert plain.names == image_feature_names(4, 2)
    peak, with_peaks, _ = _peak_member(tmp_path, 4)
    assert peak.names[:8] == plain.names and "peak_pos_m1" in peak.names
    assert peak.n_image == len(peak.names) == 4 * (2 + 4 + 4)
    loss_without = _label_loss(without.oof, labels, "a")
    loss_with = _label_loss(with_peaks.oof, labels, "a")
    assert loss_without > 0.6  # about the prior (ln 2 at prevalence 1/2)
    assert loss_with < loss_without - 0.3
    top = with_peaks.importance.sort_values("a", ascending=False)["feature"].iloc[0]
    assert top in ("peak_pos_m1", "peak_max_m1_b0", "peak_max_m1_b1")
    again = _peak_member(tmp_path, 4)[1]  # same seed: identical output
    pd.testing.assert_frame_equal(with_peaks.oof, again.oof, check_exact=True)
    pd.testing.assert_frame_equal(with_peaks.importance, again.importance, check_exact=True)


def _weak_signal(task, n=300, seed=0):
    """Metadata-only features; labels (or classes) nearly independent of them."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n)]
    x = rng.normal(size=(n, 4))
    if task == "multiclass":
        y = np.eye(3)[rng.integers(0, 3, n)]
    else:
        y = (rng.random((n, 3)) < np.array([0.3, 0.2, 0.4]) + 0.03 * (x[:, :1] > 0)).astype(float)
    sheet = pd.DataFrame({"sample_id": ids, **{f"x{k}": x[:, k] for k in range(4)}})
    labels = pd.DataFrame(y, columns=LABELS, index=pd.Index(ids, name="sample_id"))
    folds = pd.DataFrame({"sample_id": ids, "fold": np.arange(n) % 4})
    return ids, metadata_features(sheet, list(sheet.columns[1:])), labels, folds


def _member_loss(oof, labels, task):
    y = labels.loc[oof["sample_id"], LABELS].to_numpy()
    scores = oof[LABELS].to_numpy()
    if task == "multiclass":  # member tables hold log-probabilities
        return float(-np.mean(np.sum(y * scores, axis=1)))
    return mean_log_loss(y, sigmoid(scores))


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
def test_early_stopping_keeps_a_weak_signal_member_at_the_prior(task):
    ids, features, labels, folds = _weak_signal(task)
    prior = _member_loss(cross_fit(Prior(), ids, labels, folds, [], LABELS, CLIP, task)[0],
                         labels, task)
    many = GBMSettings(**{**FAST.__dict__, "n_estimators": 150, "seed": 1})
    fixed = fit_tabular(features, ids, labels, folds, [], LABELS, many, CLIP, task)
    stopping = GBMSettings(**{**many.__dict__, "early_stopping_rounds": 10})
    stopped = fit_tabular(features, ids, labels, folds, [], LABELS, stopping, CLIP, task)
    assert _member_loss(fixed.oof, labels, task) > prior + 0.15  # over-confident trees
    assert _member_loss(stopped.oof, labels, task) < prior + 0.02  # about the prior
    again = fit_tabular(features, ids, labels, folds, [], LABELS, stopping, CLIP, task)
    pd.testing.assert_frame_equal(stopped.oof, again.oof, check_exact=True)


def _default_gbm(**overrides):
    """The LightGBM settings of a metadata-only tabular member with the schema's defaults."""
    cfg = validate_config({"tabular": {"gbm": {"image_features": False,
                                               "metadata_columns": ["x0"], **overrides}}})
    return GBMSettings.from_settings(resolve_tabular(cfg, "gbm"), 1)


def _planted(task, signal, n=400, seed=5):
    """Eight numeric metadata columns; labels (classes) pure noise, or set by column x0."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n)]
    x = rng.normal(size=(n, 8))
    if task == "multiclass":
        cls = np.digitize(x[:, 0], [-0.5, 0.5]) if signal else rng.integers(0, 3, n)
        y = np.eye(3)[cls]
    else:
        y = (rng.random((n, 3)) < np.array([0.3, 0.15, 0.5])).astype(float)
        if signal:
            y[:, 0] = (x[:, 0] + rng.normal(0, 0.3, n) > 0.5).astype(float)
    sheet = pd.DataFrame({"sample_id": ids, **{f"x{k}": x[:, k] for k in range(8)}})
    labels = pd.DataFrame(y, columns=LABELS, index=pd.Index(ids, name="sample_id"))
    folds = pd.DataFrame({"sample_id": ids, "fold": np.arange(n) % 5})
    return ids, metadata_features(sheet, list(sheet.columns[1:])), labels, folds


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
def test_a_default_tabular_member_is_not_worse_than_the_prior_on_noise(task):
    """Issue 19 item 8: features that carry nothing; the old defaults (no early stopping, no
    fallback) fall below the prior out of fold, the defaults stay at it."""
    ids, features, labels, folds = _planted(task, signal=False)
    prior = _member_loss(cross_fit(Prior(), ids, labels, folds, [], LABELS, CLIP, task)[0],
                         labels, task)
    old = _default_gbm(early_stopping_rounds=None, prior_fallback=False)
    new = _default_gbm()
    assert new.early_stopping_rounds is not None and new.prior_fallback
    worse = _member_loss(fit_tabular(features, ids, labels, folds, [], LABELS, old, CLIP,
                                     task).oof, labels, task)
    result = fit_tabular(features, ids, labels, folds, [], LABELS, new, CLIP, task)
    safe = _member_loss(result.oof, labels, task)
    assert worse > prior + 0.05
    assert safe <= prior + 0.005
    # the fallback was decided in the training folds: some boosters gave way to the prior
    n_boosters = sum(len(state["boosters"]) for state in result.fitted.values())
    assert n_boosters < len(result.fitted) * (1 if task == "multiclass" else len(LABELS))


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
def test_a_default_tabular_member_still_learns_a_signal(task):
    ids, features, labels, folds = _planted(task, signal=True)
    prior_oof = cross_fit(Prior(), ids, labels, folds, [], LABELS, CLIP, task)[0]
    result = fit_tabular(features, ids, labels, folds, [], LABELS, _default_gbm(), CLIP, task)
    if task == "multiclass":
        assert (_member_loss(result.oof, labels, task)
                < _member_loss(prior_oof, labels, task) - 0.3)
        return
    y = labels.loc[result.oof["sample_id"], LABELS].to_numpy()
    learnt = log_loss_per_label(y, sigmoid(result.oof[LABELS].to_numpy()))
    prior = log_loss_per_label(y, sigmoid(prior_oof[LABELS].to_numpy()))
    assert learnt[0] < prior[0] - 0.2  # the planted label
    assert (learnt[1:] <= prior[1:] + 0.005).all()  # the noise labels stay at the prior


def test_validation_split_is_seeded_stratified_and_keeps_a_fit_row_per_class():
    from spectrovision.ensemble.tabular import validation_split

    y = np.array([0] * 20 + [1] * 10 + [2])
    fit, valid = validation_split(y, 0.2, seed=7)
    assert sorted([*fit, *valid]) == list(range(len(y)))
    assert np.bincount(y[valid], minlength=3).tolist() == [4, 2, 0]
    again = validation_split(y, 0.2, seed=7)
    np.testing.assert_array_equal(valid, again[1])
    assert not np.array_equal(valid, validation_split(y, 0.2, seed=8)[1])


def test_peak_features_need_image_features():
    cfg = validate_config({"representations": {"r": {}}, "tabular": {"gbm": {
        "image_features": False, "peak_features": True, "metadata_columns": ["x"]}}})
    with pytest.raises(ConfigError, match="peak_features"):
        resolve_tabular(cfg, "gbm")


# --- window shares, key-ion ratios, augmented copies (issue 19 item 4) --------------------

def _rendered(linear, floor=1e-4):
    """Linear ``(N, n_mass, n_x)`` runs rendered as ``normalization: none, log:
    clipped_log10``: each divided by its maximum, log-scaled; ``(N, 1, n_mass, n_x)``."""
    from spectrovision.render.runs import log_scale

    peak = linear.max(axis=(1, 2), keepdims=True)
    return log_scale(linear / peak, "clipped_log10", floor).astype(np.float32)[:, None]


CLIPPED = {"log": "clipped_log10", "log_floor": 1e-4}


def _render_member(tmp_path, images, y, render, n_test=0, augment=None, key_ions=0):
    """Stack ``images`` (the last ``n_test`` unlabelled), build the features of ``render``
    and fit a member on 3 folds: (features, result, label table)."""
    ids = [f"S{i:03d}" for i in range(len(images))]
    np.save(tmp_path / "s.npy", images)
    pd.DataFrame({"sample_id": ids}).to_csv(tmp_path / "s.csv", index=False)
    n = len(ids) - n_test
    sheet = pd.DataFrame({"sample_id": ids, "labelled": np.arange(len(ids)) < n})
    features = build_features(sheet, [tmp_path / "s.npy"], [tmp_path / "s.csv"], render,
                              augment=augment)
    labels = pd.DataFrame(y, columns=LABELS, index=pd.Index(ids, name="sample_id"))
    folds = pd.DataFrame({"sample_id": ids[:n], "fold": np.arange(n) % 3})
    result = fit_tabular(features, ids, labels.iloc[:n], folds, ids[n:], LABELS, FAST, CLIP,
                         key_ions=key_ions)
    return features, result, labels


def test_unlog_scale_undoes_each_log_of_the_render():
    from spectrovision.render.runs import log_scale, unlog_scale

    a = np.array([0.0, 5e-5, 1e-4, 3e-3, 0.25, 1.0])
    back = unlog_scale(log_scale(a, "clipped_log10", 1e-4), "clipped_log10", 1e-4)
    np.testing.assert_allclose(back, [0, 0, 0, 3e-3, 0.25, 1.0], rtol=1e-12)  # floor: empty
    for how in ("log1p1000", "none"):
        np.testing.assert_allclose(unlog_scale(log_scale(a, how, 1e-4), how, 1e-4), a,
                                   rtol=1e-12, atol=1e-15)


def test_window_shares_are_each_ions_linear_share_of_each_window():
    from spectrovision.ensemble.tabular import window_share_features, window_share_names

    linear = np.array([[[4.0, 0.0, 1.0, 1.0, 0.0, 0.0, 2.0],
                        [4.0, 2.0, 3.0, 1.0, 0.0, 0.0, 6.0]]])  # 1 run, 2 m/z, 7 columns
    stack = _rendered(linear)
    shares = window_share_features(stack, 3, **CLIPPED)  # windows: columns 0-2, 3-5, 6
    assert window_share_names(2, 3) == ["share_m0_w0", "share_m0_w1", "share_m0_w2",
                                        "share_m1_w0", "share_m1_w1", "share_m1_w2"]
    np.testing.assert_allclose(shares[0], [5 / 14, 0.5, 0.25, 9 / 14, 0.5, 0.75], rtol=1e-3)
    linear[0, :, 3:6] = 0  # an empty window: NaN (missing), not a share
    assert np.isnan(window_share_features(_rendered(linear), 3, **CLIPPED)[0, [1, 4]]).all()
    # on the log-scaled values themselves the shares would be another thing
    raw = window_share_features(stack, 3, "none", None)
    assert raw[0, 2] == pytest.approx(0.468, abs=1e-3)  # not 1/4


def _window_runs(seed, n=300, n_mass=6, n_x=20):
    """Runs of 4 windows of 5 columns, every m/z's level per window log-normal and the run
    scaled by a random factor; label a = m/z 2's share of window 1 is above the median."""
    rng = np.random.default_rng(seed)
    level = np.repeat(np.exp(rng.normal(0, 1, (n, n_mass, 4))), 5, axis=2)
    linear = rng.uniform(0.2, 1, (n, n_mass, n_x)) * level * np.exp(rng.normal(0, 1, (n, 1, 1)))
    share = linear[:, 2, 5:10].sum(axis=1) / linear[:, :, 5:10].sum(axis=(1, 2))
    y = np.column_stack([share > np.median(share), rng.random(n) < 0.3, rng.random(n) < 0.5])
    return _rendered(linear), y.astype(float)


@pytest.mark.parametrize("seed", [0, 3])
def test_window_share_features_reach_an_ions_share_of_a_window(tmp_path, seed):
    """The coarse cells hold every ion's log maximum per window, but a share of a window is
    a sum over ions that a few trees on 200 rows do not rebuild (out of fold 0.28-0.32 for
    seeds 0-3); the share feature gives it at once (0.02-0.06)."""
    images, y = _window_runs(seed)
    plain = RenderFeatures(4, **CLIPPED)
    shares = RenderFeatures(4, window_columns=5, **CLIPPED)
    features, with_shares, labels = _render_member(tmp_path, images, y, shares)
    assert features.names[24:] == [f"share_m{m}_w{w}" for m in range(6) for w in range(4)]
    without = _render_member(tmp_path, images, y, plain)[1]
    loss_without = _label_loss(without.oof, labels, "a")
    loss_with = _label_loss(with_shares.oof, labels, "a")
    assert loss_without > 0.2
    assert loss_with < 0.1 and loss_with < loss_without - 0.15
    top = with_shares.importance.sort_values("a", ascending=False)["feature"].iloc[0]
    assert top == "share_m2_w1"


def _ratio_runs(seed, n=300, n_mass=10, n_x=8):
    """Every m/z at a log-normal level (sd 1, spread over the columns at random); label a =
    m/z 3 holds more intensity than m/z 7."""
    rng = np.random.default_rng(seed)
    level = np.exp(rng.normal(0, 1, (n, n_mass)))
    linear = rng.uniform(0.2, 1, (n, n_mass, n_x)) * level[:, :, None]
    ratio = np.log(linear[:, 3].sum(axis=1) / linear[:, 7].sum(axis=1))
    y = np.column_stack([ratio > 0, rng.random(n) < 0.3, rng.random(n) < 0.5])
    return _rendered(linear), y.astype(float)


@pytest.mark.parametrize("seed", [0, 1])
def test_key_ion_ratios_find_the_two_ions_whose_ratio_carries_a_label(tmp_path, seed):
    """The levels of m/z 3 and 7 are noisy and only their ratio tells label a: trees on the
    cells reach 0.17-0.22 out of fold (seeds 0-3), the key-ion ratio 0.013. Every fold
    picks m/z 3 and 7 as label a's key ions."""
    from spectrovision.ensemble.tabular import key_ion_names

    images, y = _ratio_runs(seed)
    render = RenderFeatures(2, ion_totals=True, **CLIPPED)
    features, with_keys, labels = _render_member(tmp_path, images, y, render, key_ions=2)
    assert features.ion_totals.shape == (300, 10) and len(features.names) == 20
    assert key_ion_names(["a", "b c"], 2) == ["key_a_share1", "key_a_share2",
                                              "key_a_ratio1_2", "key_b_c_share1",
                                              "key_b_c_share2", "key_b_c_ratio1_2"]
    assert list(with_keys.importance["feature"].iloc[:1]) == ["key_a_ratio1_2"]
    assert set(with_keys.importance["feature"]) == {*features.names,
                                                    *key_ion_names(LABELS, 2)}
    for state in with_keys.fitted.values():
        assert sorted(state["key_ions"][0]) == [3, 7]
    without = _render_member(tmp_path, images, y, render)[1]
    loss_without = _label_loss(without.oof, labels, "a")
    loss_with = _label_loss(with_keys.oof, labels, "a")
    assert loss_without > 0.12
    assert loss_with < 0.05 and loss_with < loss_without - 0.1


def test_key_ions_are_chosen_on_the_training_rows_alone():
    """Rows outside the fit's training rows may hold anything (here an ion that tells
    label a perfectly): the key ions and the training rows' predictions stay the same."""
    from spectrovision.ensemble.tabular import GBMMember, key_ion_features, select_key_ions

    rng = np.random.default_rng(0)
    totals = np.exp(rng.normal(0, 1, (200, 6)))
    y = np.column_stack([totals[:, 1] > totals[:, 4], rng.random(200) < 0.5]).astype(float)
    features = Features(np.log(totals), [f"t{k}" for k in range(6)], n_image=6,
                        ion_totals=totals)
    member = GBMMember(features, FAST, key_ions=2, labels=LABELS[:2])
    train, held = np.arange(120), np.arange(120, 200)
    state = member.fit(train, y[train])
    np.testing.assert_array_equal(sorted(state["key_ions"][0]), [1, 4])
    leaky = totals.copy()
    leaky[held, 5] *= np.where(y[held, 0] > 0, 30.0, 1 / 30)
    other = GBMMember(Features(np.log(leaky), features.names, n_image=6, ion_totals=leaky),
                      FAST, key_ions=2, labels=LABELS[:2])
    again = other.fit(train, y[train])
    np.testing.assert_array_equal(state["key_ions"], again["key_ions"])
    np.testing.assert_array_equal(member.predict(state, train), other.predict(again, train))
    # the same ion on the training rows is chosen: the choice reads what it is given
    assert 5 in select_key_ions(leaky[held], y[held], 2)[0]
    ratio = key_ion_features(np.array([[1.0, 10.0, 0.0, 89.0]]), np.array([[1, 0, 2]]))
    np.testing.assert_allclose(ratio[0, :2], [-1.0, -2.0])  # log10 shares of 10 and 1 in 100
    assert np.isnan(ratio[0, 2]) and ratio[0, 3] == pytest.approx(1.0)  # log10(10 / 1)
    assert np.isnan(ratio[0, 4:]).all()  # m/z 2 is empty


def test_augment_images_trims_the_end_of_the_run_and_shifts_it():
    from spectrovision.ensemble.tabular import augment_images

    image = np.zeros((1, 2, 12), dtype=np.float32)
    image[0, 0, :10] = np.arange(1, 11)  # extent 10 columns, the last two empty
    image[0, 1, 3] = 5.0
    same = augment_images(image, np.array([0.0]), np.array([0]))
    np.testing.assert_array_equal(same, image)
    trimmed = augment_images(image, np.array([0.25]), np.array([0]))  # floor(2.5) columns
    np.testing.assert_array_equal(trimmed[0, 0], [*range(1, 9), 0, 0, 0, 0])
    np.testing.assert_array_equal(trimmed[0, 1], image[0, 1])
    right = augment_images(image, np.array([0.0]), np.array([2]))
    np.testing.assert_array_equal(right[0, 0], [0, 0, *range(1, 11)])
    assert right[0, 1, 5] == 5.0
    left = augment_images(image, np.array([0.25]), np.array([-3]))
    np.testing.assert_array_equal(left[0, 0], [*range(4, 9), *[0] * 7])


def test_copies_are_seeded_copies_of_the_labelled_rows(tmp_path):
    from spectrovision.ensemble.tabular import Augment

    images, _ = _peak_stack(n=30)
    ids = [f"S{i:03d}" for i in range(30)]
    np.save(tmp_path / "s.npy", images)
    pd.DataFrame({"sample_id": ids}).to_csv(tmp_path / "s.csv", index=False)
    sheet = pd.DataFrame({"sample_id": ids, "labelled": np.arange(30) < 20,
                          "derivatized": np.arange(30) % 2})
    paths = ([tmp_path / "s.npy"], [tmp_path / "s.csv"])
    render = RenderFeatures(4, 2)

    def build(augment):
        return build_features(sheet, *paths, render, ["derivatized"], augment=augment)

    plain = build(None)
    assert plain.copies is None
    first = build(Augment(3, 0.3, 2, seed=5))
    np.testing.assert_array_equal(first.values, plain.values)  # the rows themselves: as ever
    np.testing.assert_array_equal(first.copies.source, np.tile(np.arange(20), 3))
    np.testing.assert_array_equal(first.copies.values[:, -1], plain.values[first.copies.source, -1])
    assert not np.array_equal(first.copies.values, plain.values[first.copies.source])
    again = build(Augment(3, 0.3, 2, seed=5)).copies.values
    np.testing.assert_array_equal(again, first.copies.values)
    assert not np.array_equal(build(Augment(3, 0.3, 2, seed=6)).copies.values, again)
    # copies with nothing drawn are the rows' own features, through the same featurizer
    still = build(Augment(2, 0.0, 0, seed=5)).copies
    np.testing.assert_array_equal(still.values, plain.values[still.source])


def test_split_with_copies_keeps_each_runs_copies_on_its_side():
    from spectrovision.ensemble.tabular import split_with_copies, validation_split

    y = np.array([0] * 30 + [1] * 10)
    source = np.tile(np.arange(40), 2)
    fit, valid = split_with_copies(y, source, 0.2, seed=3)
    plain_fit, plain_valid = validation_split(y, 0.2, seed=3)
    np.testing.assert_array_equal(valid, plain_valid)  # validation: the rows as they are
    copies = fit[fit >= 40] - 40
    np.testing.assert_array_equal(fit[fit < 40], plain_fit)
    assert set(source[copies]) == set(plain_fit) and len(copies) == 2 * len(plain_fit)


def _shifted_runs(seed, n=240, n_test=120, n_x=32, shift=3):
    """Runs of 4 m/z x 32 columns; label a = m/z 1 has a narrow peak at column 8.5. The
    training runs all start at column 0, the test runs are shifted by 3 columns."""
    rng = np.random.default_rng(seed)
    m, cols = n + n_test, np.arange(n_x)
    linear = 0.05 * rng.random((m, 4, n_x))
    linear[:, 0] += np.exp(-0.5 * ((cols - 20) / 3.0) ** 2)  # a reference ion in every run
    present = rng.random(m) < 0.5
    linear[:, 1] += (present[:, None] * rng.uniform(0.3, 1, (m, 1))
                     * np.exp(-0.5 * ((cols - 8.5) / 0.7) ** 2))
    linear[n:, :, shift:] = linear[n:, :, :-shift].copy()
    linear[n:, :, :shift] = 0
    y = np.column_stack([present, rng.random(m) < 0.3, rng.random(m) < 0.5])
    return _rendered(linear), y.astype(float)


@pytest.mark.parametrize("seed", [0, 2])
def test_augmented_copies_carry_a_model_over_a_shifted_axis(tmp_path, seed):
    """Trees on 2-column cells learn the peak's cell; on test runs shifted by 3 columns they
    are confidently wrong (log loss 0.96-2.1 for seeds 0-3), with 4 copies shifted by up to
    3 columns they are not (0.010-0.013); out of fold both stay low."""
    from spectrovision.ensemble.tabular import Augment

    images, y = _shifted_runs(seed)
    render = RenderFeatures(16)
    without = _render_member(tmp_path, images, y, render, n_test=120)
    features, with_copies, labels = _render_member(tmp_path, images, y, render, n_test=120,
                                                   augment=Augment(4, 0.2, 3, seed=11))
    assert len(features.copies.source) == 4 * 240  # the labelled rows only
    assert _label_loss(without[1].test, labels, "a") > 0.5
    assert _label_loss(with_copies.test, labels, "a") < 0.1
    assert _label_loss(with_copies.oof, labels, "a") < 0.05


def test_the_copies_of_held_out_rows_never_reach_their_own_fold(tmp_path):
    """Copies of fold 0's rows made into nonsense change the models of folds 1 and 2
    (which train on them) but not fold 0's out-of-fold predictions."""
    from spectrovision.ensemble.tabular import Augment

    images, y = _shifted_runs(1, n_test=3)
    features, result, labels = _render_member(tmp_path, images, y, RenderFeatures(16),
                                              n_test=3, augment=Augment(2, 0.2, 3, seed=1))
    ids = list(labels.index)
    folds = pd.DataFrame({"sample_id": ids[:240], "fold": np.arange(240) % 3})
    copies = features.copies
    bad = copies.values.copy()
    bad[copies.source % 3 == 0] = np.random.default_rng(0).random(
        (int((copies.source % 3 == 0).sum()), bad.shape[1]))
    features.copies = type(copies)(bad, copies.source)
    other = fit_tabular(features, ids, labels.iloc[:240], folds, ids[240:], LABELS, FAST, CLIP)
    in0 = result.oof["fold"] == 0
    pd.testing.assert_frame_equal(result.oof[in0], other.oof[in0], check_exact=True)
    assert not np.array_equal(result.oof.loc[~in0, LABELS], other.oof.loc[~in0, LABELS])


def _option_cfg(**options):
    return validate_config({
        "data": {"layout": "mars1"},
        "representations": {"r": {"x_axis": "temp", "x_window": [0, 100], "x_step": 10,
                                  "mass_window": [0, 9], "log": "clipped_log10"}},
        "tabular": {"gbm": options}})


def test_resolve_tabular_derives_the_window_columns_and_the_log_to_undo():
    settings = resolve_tabular(_option_cfg(window_share_features=True, window_share_width=30),
                               "gbm")
    assert settings.window_columns == 3 and settings.render_log == "clipped_log10"
    assert settings.render_log_floor == 1e-4
    off = resolve_tabular(_option_cfg(), "gbm")
    assert (off.window_share_features, off.key_ion_ratios, off.augment_copies) == (False,
                                                                                   False, 0)


@pytest.mark.parametrize(("options", "key"), [
    ({"window_share_features": True, "window_share_width": 45}, "window_share_width"),
    ({"window_share_features": True, "window_share_width": 0}, "window_share_width"),
    ({"key_ion_ratios": True, "key_ions": 11}, "key_ions"),  # the render has 10 m/z rows
    ({"key_ion_ratios": True, "key_ions": 0}, "key_ions"),
    ({"augment_copies": -1}, "augment_copies"),
    ({"augment_copies": 2, "augment_trim_fraction": 1.0}, "augment_trim_fraction"),
    ({"augment_copies": 2, "augment_max_shift": -1}, "augment_max_shift"),
    ({"augment_copies": 2, "augment_trim_fraction": 0, "augment_max_shift": 0},
     "augment_copies"),
    ({"image_features": False, "metadata_columns": ["x"], "window_share_features": True},
     "window_share_features"),
    ({"image_features": False, "metadata_columns": ["x"], "augment_copies": 1},
     "augment_copies"),
])
def test_bad_option_values_name_their_key(options, key):
    with pytest.raises(ConfigError, match=f"tabular/gbm/{key}"):
        resolve_tabular(_option_cfg(**options), "gbm")


def test_run_tabular_with_every_option_and_apply_predicts_the_same(tiny_mars2, tmp_path):
    """The three options through the member's files: the fitted states carry each fold's
    key ions, and apply (a new sheet: here the same one) rebuilds the features without
    copies and predicts the unlabelled samples as the test table did."""
    from spectrovision.ensemble.fitted import read_fitted

    settings = {"time_bins": 4, "n_estimators": 10, "min_child_samples": 2, "seed": 1,
                "early_stopping_rounds": None, "window_share_features": True,
                "window_share_width": 2, "key_ion_ratios": True, "key_ions": 2,
                "augment_copies": 2}
    data_cfg, _, labels, inputs, outputs, result = _tiny_member(
        tiny_mars2, tmp_path, settings, {"x_window": [0, 8], "x_step": 1,
                                         "mass_window": [0, 7]})
    imp = set(pd.read_csv(outputs["importance"])["feature"])
    assert {"share_m7_w3", f"key_{labels[0]}_ratio1_2"} <= imp
    assert len(imp) == 8 * 4 + 8 * 4 + len(labels) * 3
    record = read_fitted(outputs["fitted"], "gbm", labels)
    assert all(state["key_ions"].shape == (len(labels), 2)
               for state in record["states"].values())
    _assert_apply_predicts_the_test_table(tmp_path, data_cfg, labels, inputs, outputs, result)


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
def test_n_seeds_predicts_the_mean_of_the_seeds_logits(task):
    """n_seeds: 3 is one member whose table is the mean of the logits (multiclass: the
    renormalised mean of the log-probabilities) of the fits at seeds s, s + 1 and s + 2,
    each with its own early-stopping split; the mean's log loss is below the seeds' mean."""
    from spectrovision.ensemble.combine import combine_logits

    ids, features, labels, folds = _planted(task, signal=True)
    noisy = {**FAST.__dict__, "feature_fraction": 0.3, "early_stopping_rounds": 10}
    # test tables: the folds' logit mean, which commutes with the seeds' (prob_mean does not)
    single = [fit_tabular(features, ids, labels, folds, ids[:50], LABELS,
                          GBMSettings(**{**noisy, "seed": 7 + k}), CLIP, task, "logit_mean")
              for k in range(3)]
    three = fit_tabular(features, ids, labels, folds, ids[:50], LABELS,
                        GBMSettings(**{**noisy, "seed": 7, "n_seeds": 3}), CLIP, task,
                        "logit_mean")
    for kind in ("oof", "test"):
        tables = [getattr(r, kind)[LABELS].to_numpy() for r in single]
        got = getattr(three, kind)[LABELS].to_numpy()
        assert not np.allclose(tables[0], tables[1])  # the seeds differ
        inside = np.all([np.abs(t) < np.log((1 - CLIP) / CLIP) - 1e-6 for t in tables],
                        axis=0).all(axis=1)  # rows that no table clipped
        if task == "multiclass":
            inside = np.all([t > np.log(CLIP) + 1e-6 for t in tables], axis=0).all(axis=1)
        assert inside.sum() > len(got) // 2
        expected = combine_logits(tables, 1e-7, task=task)
        np.testing.assert_allclose(got[inside], expected[inside], rtol=1e-7, atol=1e-9)
    losses = [_member_loss(r.oof, labels, task) for r in single]
    assert _member_loss(three.oof, labels, task) < np.mean(losses)


def test_n_seeds_fitted_record_applies_like_the_test_table(tiny_mars2, tmp_path):
    from spectrovision.ensemble.fitted import read_fitted

    settings = {"time_bins": 4, "n_estimators": 10, "min_child_samples": 2, "seed": 1,
                "early_stopping_rounds": None, "n_seeds": 2}
    data_cfg, _, labels, inputs, outputs, result = _tiny_member(tiny_mars2, tmp_path, settings)
    record = read_fitted(outputs["fitted"], "gbm", labels)
    assert all(len(state["more_seeds"]) == 1 for state in record["states"].values())
    _assert_apply_predicts_the_test_table(tmp_path, data_cfg, labels, inputs, outputs, result)
