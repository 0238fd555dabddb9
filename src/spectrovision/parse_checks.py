"""The workflow's parse-time checks in one call: :func:`check_run`.

Before any job runs, the workflow (``workflow/rules/common.smk``) asks this once for what it
derives from the validated config and the sample sheet, and every check on it raises a
:class:`~spectrovision.errors.ConfigError` naming the key and the fix:

- each model's settings (schema < ``model_defaults`` < the model, ``resolve_model``);
- the cross-key config checks (:func:`spectrovision.config.checks.check_config`);
- each model's metadata columns against the sample sheet and its head
  (:func:`spectrovision.data.metadata.check_model_metadata`);
- the representation each baseline reads (its registry) and each tabular member's resolved
  settings;
- each representation's image shape as the layout renders it, and, when asked (the
  workflow's main process), that every model builds and runs on it
  (:func:`spectrovision.learn.preflight.check_models_build`, cached).

It sits above the stage packages (it asks each for its own check), like ``cli.py``; unit
tests reach it without Snakemake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config.checks import check_config
from .config.schema import load_schema, resolve_model
from .data.layouts import get_layout
from .data.metadata import check_model_metadata
from .ensemble.baselines import baseline_representation
from .ensemble.rows import ENSEMBLE_ROWS
from .ensemble.tabular import TabularSettings, resolve_tabular


@dataclass(frozen=True)
class CheckedRun:
    """What the workflow derives from a checked config (names in the workflow's order)."""

    models: dict[str, dict[str, Any]]  # resolved settings, by name (sorted)
    baseline_representations: dict[str, str | None]  # in config order; None = reads none
    tabular: dict[str, TabularSettings]  # by name (sorted)
    image_shapes: dict[str, tuple[int, int, int]]  # (channels, m/z, x), by representation


def check_run(cfg: Mapping[str, Any], sheet_columns: Sequence[str], n_labels: int, *,
              build_models: bool = False, build_cache: str | Path | None = None,
              schema: dict[str, Any] | None = None) -> CheckedRun:
    """Every parse-time check of the validated ``cfg`` against a sample sheet with
    ``sheet_columns`` and ``n_labels`` labels; returns what the workflow derives on the way.
    ``build_models``: also build and run every model on its image shape (torch; cached in
    ``build_cache``)."""
    schema = schema or load_schema()
    columns = list(sheet_columns)
    models = {name: resolve_model(dict(cfg), name, schema) for name in sorted(cfg["models"])}
    check_config(cfg, models, reserved=ENSEMBLE_ROWS)  # config does not import the ensemble
    for name, settings in models.items():
        check_model_metadata(name, settings, columns)
    baselines = {b: baseline_representation(b, cfg) for b in cfg["baselines"]}
    tabular = {name: resolve_tabular(cfg, name, columns) for name in sorted(cfg["tabular"])}
    layout = get_layout(cfg["data"]["layout"])
    shapes = {rep: tuple(layout.image_shape(cfg["representations"][rep]))
              for rep in sorted(cfg["representations"])}
    if build_models and models:
        from .learn.preflight import check_models_build

        check_models_build(models, shapes, n_labels, cache=build_cache)
    return CheckedRun(models=models, baseline_representations=baselines, tabular=tabular,
                      image_shapes=shapes)  # type: ignore[arg-type]
