"""Cross-key config checks (spectrovision.config.checks) and the workflow's parse-time
checks in one call (spectrovision.parse_checks.check_run): each names its key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spectrovision.config.checks import (
    METADATA_HEADS,
    analysis_model,
    check_config,
    check_head_metadata,
    check_member_names,
    chosen_representation,
    novelty_representation,
)
from spectrovision.config.schema import resolve_model, validate_config
from spectrovision.ensemble.rows import ENSEMBLE_ROWS
from spectrovision.errors import ConfigError
from spectrovision.parse_checks import check_run

REPO = Path(__file__).resolve().parents[1]


def _config(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "representations": {"b": {"n_mass": 16}, "a": {"n_mass": 16}},
        "models": {"m1": {"representation": "a", "backbone": "resnet10t"},
                   "m2": {"representation": "b", "backbone": "resnet10t"}},
    }
    raw.update(overrides)
    return validate_config(raw)


def _models(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: resolve_model(cfg, name) for name in cfg["models"]}


def test_a_valid_config_passes_every_check():
    cfg = _config()
    check_config(cfg, _models(cfg), reserved=ENSEMBLE_ROWS)


@pytest.mark.parametrize(("models", "tabular", "key"), [
    (["prior"], [], "'models'"), (["ensemble"], [], "'models'"),
    (["ensemble_nested"], [], "'models'"),
    (["m"], ["m"], "'tabular'"), ([], ["benchmark_lr"], "'tabular'"),
])
def test_member_names_may_not_clash(models, tabular, key):
    with pytest.raises(ConfigError, match=key) as err:
        check_member_names(models, ["prior", "benchmark_lr"], tabular, ENSEMBLE_ROWS)
    assert "Fix: rename" in str(err.value)


def test_check_config_refuses_a_model_named_like_an_ensemble_row():
    cfg = _config(models={"ensemble_nested": {"representation": "a", "backbone": "resnet10t"}})
    with pytest.raises(ConfigError, match=r"the ensemble's rows \['ensemble', "
                                          r"'ensemble_nested'\]"):
        check_config(cfg, _models(cfg), reserved=ENSEMBLE_ROWS)


def test_a_chosen_representation_must_exist_and_null_means_the_first_by_name():
    assert chosen_representation("k", None, ["b", "a"]) == "a"
    assert chosen_representation("k", "b", ["b", "a"]) == "b"
    assert chosen_representation("k", None, []) is None
    with pytest.raises(ConfigError, match="config key 'novelty/representation': 'z'"):
        novelty_representation(_config(novelty={"representation": "z"}))


def test_analysis_model_defaults_to_the_first_image_only_model():
    cfg = _config()
    assert analysis_model(cfg, _models(cfg), "explain") == ("m1", 0)
    cfg = _config(embed={"model": "m2", "fold": 2})
    assert analysis_model(cfg, _models(cfg), "embed") == ("m2", 2)


@pytest.mark.parametrize(("stage_cfg", "match"), [
    ({"model": "nope"}, "'explain/model': 'nope' is not one of the models"),
    ({"fold": 9}, "'explain/fold': 9 is not one of the folds"),
])
def test_analysis_model_errors_name_the_key(stage_cfg, match):
    cfg = _config(explain=stage_cfg)
    with pytest.raises(ConfigError, match=match):
        check_config(cfg, _models(cfg), reserved=ENSEMBLE_ROWS)


def test_analysis_refuses_metadata_models():
    cfg = _config(explain={"model": "m1"})
    models = _models(cfg)
    models["m1"] = dict(models["m1"], metadata_columns=["x"])
    with pytest.raises(ConfigError, match="'explain/model': 'm1' fuses metadata"):
        analysis_model(cfg, models, "explain")
    models["m2"] = dict(models["m2"], metadata_columns=["x"])
    cfg = _config()
    with pytest.raises(ConfigError, match="'explain/enabled'"):
        analysis_model(cfg, models, "explain")
    cfg = _config(explain={"enabled": False})
    assert analysis_model(cfg, models, "explain") == (None, 0)


def test_multiclass_refuses_per_label_weights():
    cfg = _config(task="multiclass", ensemble={"per_label_weights": True})
    with pytest.raises(ConfigError, match="'ensemble/per_label_weights'"):
        check_config(cfg, _models(cfg), reserved=ENSEMBLE_ROWS)
    cfg = _config(task="multiclass")
    check_config(cfg, _models(cfg), reserved=ENSEMBLE_ROWS)


def test_bagged_selection_refuses_per_label_weights_with_the_fix():
    cfg = _config(ensemble={"selection": "bagged", "per_label_weights": True})
    with pytest.raises(ConfigError, match="'ensemble/per_label_weights'.*selection greedy"):
        check_config(cfg, _models(cfg), reserved=ENSEMBLE_ROWS)
    cfg = _config(ensemble={"selection": "bagged", "shrink": True})
    check_config(cfg, _models(cfg), reserved=ENSEMBLE_ROWS)


def test_common_smk_raises_nothing_itself():
    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert "raise " not in text


def _run_config(**overrides: Any) -> dict[str, Any]:
    return _config(**{"baselines": ["prior", "benchmark_lr"],
                      "baseline_settings": {"benchmark_lr": {"representation": "b"}},
                      "tabular": {"t": {"representation": None,
                                        "metadata_columns": ["derivatized"]}},
                      **overrides})


SHEET_COLUMNS = ["sample_id", "split", "features_path", "md5", "derivatized", "labelled",
                 "shard"]


def test_check_run_returns_what_the_workflow_derives():
    run = check_run(_run_config(), SHEET_COLUMNS, n_labels=3)
    assert list(run.models) == ["m1", "m2"] and run.models["m2"]["representation"] == "b"
    assert run.baseline_representations == {"prior": None, "benchmark_lr": "b"}
    assert run.tabular["t"].representation == "a"  # null = the first by name
    assert list(run.tabular["t"].metadata_columns) == ["derivatized"]
    assert run.image_shapes == {"a": (1, 16, 192), "b": (1, 16, 192)}


@pytest.mark.parametrize(("overrides", "columns", "match"), [
    ({"embed": {"model": "nope"}}, SHEET_COLUMNS, "'embed/model': 'nope'"),
    ({"models": {"m1": {"representation": "a", "metadata_columns": ["derivatized"],
                        "head": "sed"}, "m2": {"representation": "b"}}}, SHEET_COLUMNS,
     "'models/m1/metadata_columns': the sed head takes no metadata branch"),
    ({"models": {"m1": {"representation": "a", "metadata_columns": ["depth"]},
                 "m2": {"representation": "b"}}},
     SHEET_COLUMNS, "'models/m1/metadata_columns': column 'depth' is not in the sample sheet"),
    ({}, SHEET_COLUMNS[:4], "'tabular/t/metadata_columns'"),
    ({"baseline_settings": {"benchmark_lr": {"representation": "z"}}}, SHEET_COLUMNS,
     "'baseline_settings/benchmark_lr/representation': 'z'"),
])
def test_check_run_refuses_each_fault_naming_its_key(overrides, columns, match):
    with pytest.raises(ConfigError, match=match):
        check_run(_run_config(**overrides), columns, n_labels=3)


def test_only_the_metadata_heads_fuse_metadata():
    for head in METADATA_HEADS:
        check_head_metadata("m", head, 2)
    check_head_metadata("m", "sed", 0)
    with pytest.raises(ConfigError, match="'models/m/metadata_columns': the sed head"):
        check_head_metadata("m", "sed", 1)
