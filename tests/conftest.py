"""Shared fixtures: a tiny generated Mars-2-layout data set and a tiny config over it
(derived from the shipped config/config.yaml; the helpers live in tests/support.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from spectrovision.config.schema import validate_config
from spectrovision.provenance import code
from spectrovision.synth.demo import generate_demo_dataset
from support import tiny_workflow_config

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
    """A validated config over ``tiny_mars2``, derived from the shipped config
    (``support.tiny_workflow_config``): one 64x32 representation, 2 shards, 2 folds, two
    resnet10t models (pool and time_avg heads), 1 epoch; results under tmp_path."""
    return validate_config(tiny_workflow_config(tiny_mars2, tmp_path / "results"))


@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package that provenance.code reads instead (edit it freely)."""
    copy = tmp_path / "spectrovision"
    shutil.copytree(code.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code, "PACKAGE_DIR", copy)
    code.direct_imports.cache_clear()
    yield copy
    code.direct_imports.cache_clear()
