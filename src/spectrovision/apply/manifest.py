"""The trained run's manifest (``trained_manifest.json``) and the apply run's config check.

A training run writes its manifest after the ensemble: the layout, labels and task, the
recipe (every config key that changes what a member predicts: representations, QC, models,
tabular members, baselines, folds, ensemble and the TTA of ``predict``), each representation's
image shape, the ensemble's selection (members and weights) and every member's files with
their SHA-256. An apply run (``trained_results:`` set) reads it at parse time:
:func:`applied_config` refuses a config whose recipe keys differ from the trained run's and
gives the run the trained recipe, so new runs are ingested and rendered exactly as the
training runs were; :func:`applied_members` names the selected members and their files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, shown

PathLike = str | os.PathLike[str]
MANIFEST_NAME = "trained_manifest.json"
FORMAT = 1
# config blocks whose values change what a trained member predicts
RECIPE_KEYS = ("task", "seed", "representations", "model_defaults", "models", "tabular",
               "baselines", "baseline_settings", "folds", "ensemble", "qc", "predict")
# keys inside those blocks that an apply run may set freely (they change no prediction)
FREE_KEYS = {"qc": ("check_md5",), "predict": ("batch_size",)}


def recipe_of(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe part of a validated config (JSON values, free keys left out)."""
    recipe = {}
    for key in RECIPE_KEYS:
        value = cfg[key]
        if key in FREE_KEYS:
            value = {k: v for k, v in value.items() if k not in FREE_KEYS[key]}
        recipe[key] = json.loads(json.dumps(value))
    return recipe


def member_entries(*, models: Mapping[str, Mapping[str, Any]], n_folds: int,
                   fitted: Mapping[str, tuple[str, str | None, Sequence[str]]]) -> dict[str, Any]:
    """Every member's kind, representation, metadata columns and files (relative to the
    results folder): models (``models``: name -> resolved settings) have one weights file
    per fold; ``fitted``: baseline or tabular name -> (kind, representation, metadata
    columns), one ``fitted.pkl`` each."""
    entries: dict[str, Any] = {}
    for name, settings in models.items():
        entries[name] = {"kind": "model", "representation": settings["representation"],
                         "metadata_columns": list(settings["metadata_columns"]),
                         "files": [f"models/{name}/fold{k}/model.pt" for k in range(n_folds)]}
    for name, (kind, rep, columns) in fitted.items():
        entries[name] = {"kind": kind, "representation": rep, "metadata_columns": list(columns),
                         "files": [f"members/{name}/fitted.pkl"]}
    return entries


def run_trained_manifest(*, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                         recipe: Mapping[str, Any], layout: str,
                         labels: Sequence[str], image_shapes: Mapping[str, Sequence[int]],
                         members: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``outputs["manifest"]`` (at the top of the results folder): the trained run's
    manifest (``inputs["selection"]``: the ensemble's selection.json; every member file,
    relative to the results folder, is hashed)."""
    from ..io import write_json
    from ..provenance.records import sha256_file

    selection = json.loads(Path(inputs["selection"]).read_text())
    root = Path(outputs["manifest"]).parent
    hashed = {}
    for name, entry in members.items():
        hashed[name] = {**entry, "sha256": {f: sha256_file(root / f) for f in entry["files"]}}
    manifest = {"format": FORMAT, "layout": layout, "labels": list(labels),
                "task": recipe["task"], "recipe": dict(recipe),
                "image_shapes": {k: list(map(int, v)) for k, v in image_shapes.items()},
                "members": hashed, "selection": selection}
    write_json(outputs["manifest"], manifest)
    return manifest


def read_manifest(trained_results: PathLike) -> dict[str, Any]:
    """The manifest of the trained run in ``trained_results``; a ConfigError naming the key
    when there is none."""
    path = Path(trained_results) / MANIFEST_NAME
    if not path.is_file():
        raise ConfigError(f"config key 'trained_results': {path} does not exist. Fix: point "
                          "trained_results at the results folder of a completed training run "
                          "(its `snakemake` run writes trained_manifest.json after the "
                          "ensemble), or run that training first.")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config key 'trained_results': {path} cannot be read ({exc}). "
                          "Fix: re-run the training workflow's trained_manifest rule.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(f"config key 'trained_results': {path} is not a manifest of format "
                          f"{FORMAT}. Fix: re-run the training workflow's trained_manifest rule.")
    return manifest


def _first_difference(given: Any, trained: Any, path: str) -> tuple[str, Any, Any] | None:
    """The first key path where two JSON values differ (None when equal)."""
    if isinstance(given, dict) and isinstance(trained, dict):
        for key in sorted(set(given) | set(trained)):
            if key not in trained or key not in given:
                return (f"{path}/{key}", given.get(key, "<absent>"),
                        trained.get(key, "<absent>"))
            found = _first_difference(given[key], trained[key], f"{path}/{key}")
            if found:
                return found
        return None
    return None if given == trained else (path, given, trained)


def applied_config(cfg: Mapping[str, Any], raw: Mapping[str, Any],
                   manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The apply run's config: ``cfg`` (validated) with the trained recipe, only the
    representations that the selected members read, and no model, tabular member or
    baseline of its own (nothing is trained). ``raw`` is the config as written: a recipe
    key it sets to another value than the trained run's is a ConfigError naming the key;
    so is another data layout, or a results folder that is the trained one."""
    trained = cfg["trained_results"]
    if Path(cfg["results"]).resolve() == Path(trained).resolve():
        raise ConfigError(f"config key 'results': {cfg['results']} is the trained run's folder "
                          "(trained_results). Fix: give the apply run its own results folder.")
    if cfg["data"]["layout"] != manifest["layout"]:
        raise ConfigError(f"config key 'data/layout': {shown(cfg['data']['layout'])} here but the "
                          f"trained run ({trained}) read layout {shown(manifest['layout'])}. "
                          "Fix: apply the models to runs of the layout they were trained on.")
    given = recipe_of(cfg)
    for key in RECIPE_KEYS:
        if key not in raw:
            continue
        mine, theirs = given[key], manifest["recipe"][key]
        # a block is compared on the entries the config names (the rest is the trained run's)
        pairs = ([(f"{key}/{sub}", mine.get(sub, "<absent>"), theirs.get(sub, "<absent>"))
                  for sub in raw[key] if sub not in FREE_KEYS.get(key, ())]
                 if isinstance(raw[key], Mapping) and isinstance(mine, dict) else
                 [(key, mine, theirs)])
        for where, value, trained_value in pairs:
            found = _first_difference(value, trained_value, where)
            if found:
                path, ours, trained_one = found
                raise ConfigError(
                    f"config key '{path}': {shown(ours)} here but the trained run ({trained}) "
                    f"used {shown(trained_one)}. Trained members only apply to runs rendered "
                    f"and predicted as they were trained. Fix: remove '{where}' from this "
                    "config (the trained run's settings are used), or train a new run with "
                    "the change.")
    out = {**cfg, **manifest["recipe"]}
    out["qc"] = {**manifest["recipe"]["qc"],
                 **{k: cfg["qc"][k] for k in FREE_KEYS["qc"]}}
    out["predict"] = {**manifest["recipe"]["predict"],
                      **{k: cfg["predict"][k] for k in FREE_KEYS["predict"]}}
    used = {m["representation"] for m in applied_members(manifest).values()}
    out["representations"] = {k: v for k, v in manifest["recipe"]["representations"].items()
                              if k in used}
    out["models"], out["tabular"], out["baselines"] = {}, {}, []
    return out


def applied_members(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The members the trained ensemble selected (name -> manifest entry), in selection
    order."""
    return {name: manifest["members"][name] for name in manifest["selection"]["members"]}


def check_applied_labels(labels: Sequence[str], manifest: Mapping[str, Any],
                         trained_results: PathLike) -> list[str]:
    """The labels an apply run predicts: the trained run's. Label files of the new data
    set (for scoring) must name the same labels."""
    trained = list(manifest["labels"])
    if labels and list(labels) != trained:
        raise ConfigError(f"config key 'data/labels_files': the label files name {list(labels)} "
                          f"but the trained run ({trained_results}) predicts {trained}. Fix: "
                          "give label files with the trained labels, or none.")
    return trained
