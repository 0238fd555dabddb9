"""Shared fixtures: a tiny generated Mars-2-layout data set and a tiny config over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spectrovision.config.schema import validate_config
from spectrovision.data.demo import generate_demo_dataset

TINY_N_RUNS = 36
TINY_N_SCANS = (40, 60)


@pytest.fixture(scope="session")
def tiny_mars2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 36-run demo data set (18 train, 7 val, 11 test; 40-60 scans per run), made once
    per test session. Treat it as read-only: copy it before changing anything."""
    out = tmp_path_factory.mktemp("tiny_mars2")
    return generate_demo_dataset(out, n_runs=TINY_N_RUNS, seed=0, n_scans=TINY_N_SCANS)


@pytest.fixture
def tiny_config(tiny_mars2: Path, tmp_path: Path) -> dict[str, Any]:
    """A validated config over ``tiny_mars2``: one 64x32 representation, 2 shards, 2 folds,
    two resnet10t models (pool and time_avg heads), 1 epoch; results under tmp_path."""
    return validate_config({
        "results": str(tmp_path / "results"),
        "seed": 7,
        "data": {"layout": "mars2", "dir": str(tiny_mars2)},
        "workflow": {"shards": 2, "train_threads": 1},
        "representations": {
            "tiny": {"n_mass": 64, "n_x": 32, "background_subtraction": True,
                     "derivatized_channel": True},
        },
        "folds": {"n_folds": 2, "seed": 7, "val_in_folds": True},
        "model_defaults": {"epochs": 1, "batch_size": 8, "lr": 3.0e-3, "warmup_epochs": 0,
                           "time_resize": [24, 40], "amp": False, "channels_last": False},
        "models": {
            "tiny_pool": {"representation": "tiny", "backbone": "resnet10t", "head": "pool"},
            "tiny_timeavg": {"representation": "tiny", "backbone": "resnet10t",
                             "head": "time_avg"},
        },
        "predict": {"tta_n_widths": 2, "tta_step": 8, "batch_size": 16},
        "baseline_settings": {"benchmark_lr": {"time_bins": 4}},
    })
