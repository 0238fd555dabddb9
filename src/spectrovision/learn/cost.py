"""The relative cost of a model's train jobs, which Snakemake starts longest first.

Torch-free: the Snakefile reads it while it builds the job graph. On two slots with three
2-D folds and three short 1-D folds, starting a short job first can leave the last long
fold running alone at the end (docs/benchmarks.md, "Demo end to end").

Snakemake's rule priorities do not reach upstream jobs, so the jobs that a train job waits
for carry priorities of their own: a representation's renders one above the costliest train
job that reads them, ingest and folds one above every train job. Otherwise the renders of a
long member can wait behind a short member's train jobs, which then start first. The other
jobs the ensemble waits for (baselines, tabular members, gathering, the ensemble itself) rank
above the analyses that nothing waits for (explain, embed, reports), which can fill a slot
while the last fold trains instead of leaving a chain of them after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the 1-D backbones (the registry of learn.nets1d names the same; tests/test_models.py checks)
NET1D_BACKBONES = frozenset({"conv1d", "gru1d", "transformer1d", "mzconv1d", "massconv1d"})
#: the priority of the jobs on the way to the ensemble besides train and predict jobs: one
#: above the analyses' 0
SCORE_PATH_PRIORITY = 1
#: a timm 2-D CNN's epoch against a 1-D net's: 6-12x per sample on the CPU (resnet10t against
#: the 1-D nets, docs/benchmarks.md), about 5x per epoch in the demo
TIMM_EPOCH_FACTOR = 8


def train_priority(model: Mapping[str, Any]) -> int:
    """Snakemake priority of a model's train jobs (higher starts first): its epochs times its
    seeds (``n_seeds``), times :data:`TIMM_EPOCH_FACTOR` for a timm backbone."""
    epochs = int(model.get("epochs", 1)) * int(model.get("n_seeds", 1))
    return epochs * (1 if model.get("backbone") in NET1D_BACKBONES else TIMM_EPOCH_FACTOR)


def render_priority(models: Mapping[str, Mapping[str, Any]], representation: str) -> int:
    """Snakemake priority of a representation's render and stack jobs: one above the
    costliest train job of the ``models`` (name -> resolved settings) that read it, else
    :data:`SCORE_PATH_PRIORITY` (a representation that only baselines, tabular members or
    the analyses read)."""
    costs = [train_priority(m) for m in models.values()
             if m.get("representation") == representation]
    return 1 + max(costs) if costs else SCORE_PATH_PRIORITY


def prep_priority(models: Mapping[str, Mapping[str, Any]]) -> int:
    """Snakemake priority of the jobs every train job waits for (ingest, the labelled
    sheet, folds): one above the costliest train job of the ``models``."""
    return 1 + max((train_priority(m) for m in models.values()), default=0)
