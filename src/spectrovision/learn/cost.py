"""The relative cost of a model's train jobs, which Snakemake starts longest first.

Torch-free: the Snakefile reads it while it builds the job graph. On two slots with three
2-D folds and three short 1-D folds, starting a short job first can leave the last long
fold running alone at the end (docs/benchmarks.md, "Demo end to end").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the 1-D backbones (the registry of learn.nets1d names the same; tests/test_models.py checks)
NET1D_BACKBONES = frozenset({"conv1d", "gru1d", "transformer1d", "mzconv1d", "massconv1d"})
#: a timm 2-D CNN's epoch against a 1-D net's: 6-12x per sample on the CPU (resnet10t against
#: the 1-D nets, docs/benchmarks.md), about 5x per epoch in the demo
TIMM_EPOCH_FACTOR = 8


def train_priority(model: Mapping[str, Any]) -> int:
    """Snakemake priority of a model's train jobs (higher starts first): its epochs times its
    seeds (``n_seeds``), times :data:`TIMM_EPOCH_FACTOR` for a timm backbone."""
    epochs = int(model.get("epochs", 1)) * int(model.get("n_seeds", 1))
    return epochs * (1 if model.get("backbone") in NET1D_BACKBONES else TIMM_EPOCH_FACTOR)
