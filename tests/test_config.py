"""Config validation: defaults filled from the schema, clear errors, model resolution."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from spectrovision.config.schema import (derive_seed, load_schema, render_log_floor, resolve_model,
                                         validate_config)
from spectrovision.errors import ConfigError
from spectrovision.learn.settings import model_settings

REPO = Path(__file__).resolve().parents[1]


def _minimal() -> dict:
    return {
        "representations": {"r": {"n_mass": 32}},
        "models": {"m": {"representation": "r", "backbone": "resnet10t"}},
    }


def test_defaults_are_filled_from_schema():
    cfg = validate_config(_minimal())
    assert cfg["qc"]["drop_masses"] == [4]
    assert cfg["folds"]["n_folds"] == 5
    rep = cfg["representations"]["r"]
    assert rep["n_mass"] == 32  # given value kept
    assert rep["n_x"] == 192 and rep["log"] == "log1p1000"  # defaults of the map's items


def test_every_schema_key_has_description_and_default():
    schema = load_schema()

    def walk(node: dict, path: str) -> list[str]:
        missing = []
        for key, sub in node.get("properties", {}).items():
            where = f"{path}/{key}"
            if "description" not in sub:
                missing.append(f"{where}: description")
            if "default" not in sub and where.count("/") > 0 and key != "representation":
                missing.append(f"{where}: default")
            missing += walk(sub, where)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            missing += walk(extra, path + "/*")
        return missing

    problems = walk(schema, "") + walk(schema["$defs"]["model"], "/models/*")
    assert problems == []


@pytest.mark.parametrize("name", ["mars1.yaml", "mars1-cpu.yaml", "mars2.yaml", "mars2-cpu.yaml"])
def test_ready_made_configs_validate_and_every_model_resolves(name):
    with open(REPO / "config" / name) as fh:
        cfg = validate_config(yaml.safe_load(fh))
    for model in cfg["models"]:
        settings = resolve_model(cfg, model)
        # model_defaults reach every model (schema defaults only fill what neither sets)
        for key, value in cfg["model_defaults"].items():
            assert settings[key] == cfg["models"][model].get(key, value)


def test_default_config_file_validates():
    with open(REPO / "config" / "config.yaml") as fh:
        cfg = validate_config(yaml.safe_load(fh))
    assert cfg["models"], "the default config trains at least one model"


def test_unknown_key_is_a_clear_error():
    cfg = _minimal()
    cfg["qc"] = {"negative_intensities": "clip"}  # typo of negative_intensity
    with pytest.raises(ConfigError, match="qc"):
        validate_config(cfg)


def test_bad_enum_names_the_key():
    cfg = _minimal()
    cfg["representations"]["r"]["normalization"] = "row"
    with pytest.raises(ConfigError, match="representations/r/normalization"):
        validate_config(cfg)


def test_model_must_name_an_existing_representation():
    cfg = _minimal()
    cfg["models"]["m"]["representation"] = "missing"
    with pytest.raises(ConfigError, match="models/m/representation"):
        validate_config(cfg)


def test_resolve_model_precedence_and_seed():
    cfg = _minimal()
    cfg["model_defaults"] = {"epochs": 3, "lr": 0.5}
    cfg["models"]["m"]["lr"] = 0.1
    full = validate_config(cfg)
    model = resolve_model(full, "m")
    assert model["epochs"] == 3  # model_defaults over schema default (20)
    assert model["lr"] == 0.1  # model's own over model_defaults
    assert model["head"] == "pool"  # schema default
    assert model["seed"] == derive_seed(full["seed"], "m")
    other = copy.deepcopy(full)
    other["models"]["n"] = dict(other["models"]["m"])
    assert resolve_model(other, "n")["seed"] != model["seed"]


def test_render_log_floor_is_the_clipped_log10_representations_log_floor():
    cfg = _minimal()
    cfg["representations"] = {"c": {"log": "clipped_log10", "log_floor": 1e-3},
                              "d": {"log": "clipped_log10"},  # schema default floor
                              "r": {"log": "log1p1000", "log_floor": 1e-3},
                              "n": {"log": "none"}}
    cfg["models"] = {name: {"representation": name, "global_scale_sigma": 0.05}
                     for name in ("c", "d")}
    cfg["models"]["plain"] = {"representation": "c"}  # no log-space augmentation: no floor
    full = validate_config(cfg)
    floors = {name: resolve_model(full, name)["render_log_floor"] for name in full["models"]}
    assert floors == {"c": 1e-3, "d": 1e-4, "plain": None}
    for rep in ("r", "n"):  # the floor of a render that is not clipped_log10 is None
        assert render_log_floor({**full["representations"][rep]}) is None
    assert resolve_model(cfg, "d")["render_log_floor"] == 1e-4  # unvalidated: same defaults
    full["representations"]["c"]["log_floor"] = 1e-5
    assert resolve_model(full, "c")["render_log_floor"] == 1e-5
    # the typed settings (train rule params -> model.pt) carry it
    assert model_settings(resolve_model(full, "c")).render_log_floor == 1e-5


@pytest.mark.parametrize("block", ["models", "model_defaults"])
def test_render_log_floor_key_is_refused_with_the_fix(block):
    cfg = _minimal()
    if block == "models":
        cfg["models"]["m"]["render_log_floor"] = 1e-4
    else:
        cfg["model_defaults"] = {"render_log_floor": 1e-4}
    where = "models/m" if block == "models" else "model_defaults"
    message = (f"'{where}/render_log_floor'.*taken from the representation's log_floor.*"
               "delete the key")
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)
    with pytest.raises(ConfigError, match=message):
        resolve_model(cfg, "m")


def test_resolve_model_rejects_bad_model_value():
    cfg = validate_config(_minimal())
    cfg["models"]["m"]["head"] = "transformer"
    with pytest.raises(ConfigError, match="models/m"):
        resolve_model(cfg, "m")
