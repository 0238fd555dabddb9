"""Parse-time model check (learn/preflight.py): a backbone that cannot run on the
representation's images is a ConfigError naming the model, before any job starts."""

from __future__ import annotations

import json

import pytest

from spectrovision.config.schema import resolve_model, validate_config
from spectrovision.errors import ConfigError
from spectrovision.learn.preflight import check_models_build

SHAPES = {"r": (1, 32, 24)}


def _models(**backbones: str) -> dict:
    cfg = validate_config({
        "representations": {"r": {"n_mass": 32, "n_x": 24}},
        "model_defaults": {"time_resize": [16, 32]},
        "models": {name: {"representation": "r", "backbone": b} for name, b in backbones.items()},
    })
    return {name: resolve_model(cfg, name) for name in cfg["models"]}


def test_a_fixed_size_vit_is_refused_naming_the_model_and_the_fix():
    models = _models(cnn="resnet10t", vit="vit_tiny_patch16_224")
    with pytest.raises(ConfigError) as err:
        check_models_build(models, SHAPES, n_outputs=3)
    text = str(err.value)
    assert "config key 'models/vit/backbone': 'vit_tiny_patch16_224'" in text
    assert "1 x 32 x [16, 32]" in text and "Fix: choose a backbone that takes any" in text


def test_passing_models_are_cached_and_only_new_ones_are_built(tmp_path):
    cache = tmp_path / "checks" / "models.json"
    models = _models(a="resnet10t", b="conv1d")
    assert check_models_build(models, SHAPES, 3, cache) == ["a", "b"]
    assert len(json.loads(cache.read_text())) == 2
    assert check_models_build(models, SHAPES, 3, cache) == []  # nothing new
    edited = dict(models, a=dict(models["a"], head="time_avg"))
    assert check_models_build(edited, SHAPES, 3, cache) == ["a"]  # edited: built again
