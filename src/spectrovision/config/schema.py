"""Configuration: validate against the JSON Schema, fill defaults, resolve models.

The schema (``config.schema.yaml`` in this package, read through package resources) is the
single source of keys, descriptions and defaults; this module is importable without
Snakemake.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ..errors import ConfigError
from .checks import LOG_SPACE_AUGMENTS

SCHEMA_RESOURCE = "config.schema.yaml"  # shipped inside this package (pyproject package-data)
# model keys the schema no longer has, and what took their place (a specific error for them)
REMOVED_MODEL_KEYS = {
    "render_log_floor": "render_log_floor is now taken from the representation's log_floor "
                        "(log: clipped_log10)",
}


def load_schema(path: str | Path | None = None) -> dict[str, Any]:
    """The config schema: the packaged one, or the file at ``path``."""
    if path is None:
        return yaml.safe_load(resources.files(__package__).joinpath(SCHEMA_RESOURCE).read_text())
    with open(path) as fh:
        return yaml.safe_load(fh)


def _fill_defaults(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> None:
    """Recursively set defaults from ``properties`` (and ``additionalProperties`` maps)."""
    if "$ref" in schema:
        ref = schema["$ref"].removeprefix("#/")
        node: Any = root
        for part in ref.split("/"):
            node = node[part]
        schema = node
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra, root)


def representation_block(settings: Mapping[str, Any], schema: dict[str, Any] | None = None
                         ) -> dict[str, Any]:
    """One representation's settings (``representations.<name>``) validated against the
    schema and with every default filled in, as :func:`validate_config` leaves them: what
    :class:`~spectrovision.render.runs.RenderSpec` and
    :class:`~spectrovision.render.images.ImageSpec` are built from (they have no defaults of
    their own)."""
    schema = schema or load_schema()
    node = schema["properties"]["representations"]["additionalProperties"]
    block = copy.deepcopy(dict(settings))
    try:
        jsonschema.validate(block, node)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(representation)"
        raise ConfigError(f"representation key '{where}': {exc.message}. Fix the value; "
                          "config/README.md lists every key with its default.") from None
    _fill_defaults(block, node, schema)
    return block


def validate_config(config: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a validated deep copy of ``config`` with every default filled in.

    Models are not filled here (their defaults merge with ``model_defaults``): use
    :func:`resolve_model`.
    """
    schema = schema or load_schema()
    cfg = copy.deepcopy(config)
    _refuse_removed_keys(cfg, list(cfg.get("models") or {}))
    try:
        jsonschema.validate(cfg, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ConfigError(f"config key '{where}': {exc.message}. Fix the value in your config "
                          f"file; config/README.md lists every key with its default.") from None
    models = cfg.pop("models", {})
    _fill_defaults(cfg, schema, schema)
    cfg["models"] = models
    for name, model in models.items():
        rep = resolve_model(cfg, name, schema)["representation"]
        if rep not in cfg["representations"]:
            raise ConfigError(f"config key 'models/{name}/representation': '{rep}' is not one of "
                              f"the representations {sorted(cfg['representations'])}. Fix: name a "
                              "representation defined under 'representations:'.")
    return cfg


def resolve_model(config: dict[str, Any], name: str,
                  schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A model's full settings: schema defaults < ``model_defaults`` < the model's own keys,
    and ``render_log_floor``, derived from its representation (:func:`render_log_floor`)
    when one of its log-space augmentations is on, else None (so a model without them has
    the settings, and the train jobs, it had before the floor was derived)."""
    schema = schema or load_schema()
    model_schema = schema["$defs"]["model"]
    if name not in config.get("models", {}):
        raise ConfigError(f"model '{name}' is not defined under 'models:'")
    _refuse_removed_keys(config, [name])
    merged = schema_defaults(model_schema)
    merged.update(copy.deepcopy(config.get("model_defaults", {})))
    merged.update(copy.deepcopy(config["models"][name]))
    try:
        jsonschema.validate(merged, model_schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or name
        raise ConfigError(f"config key 'models/{name}/{where}': {exc.message}") from None
    if merged.get("seed") is None:
        # a config not yet validated takes the global seed's default from the schema
        seed = config["seed"] if "seed" in config else schema["properties"]["seed"]["default"]
        merged["seed"] = derive_seed(int(seed), name)
    merged["name"] = name
    rep = config.get("representations", {}).get(merged["representation"])
    uses_floor = any(merged.get(k) for k in LOG_SPACE_AUGMENTS)
    merged["render_log_floor"] = None if rep is None or not uses_floor else render_log_floor(
        {**schema_defaults(schema["properties"]["representations"]["additionalProperties"]),
         **rep})
    return merged


def render_log_floor(representation: Mapping[str, Any]) -> float | None:
    """The floor that a model's log-space cached-render augmentations work with: the
    representation's ``log_floor`` when it renders ``log: clipped_log10``, else None (those
    augmentations are then refused, see ``config.checks.check_augment``)."""
    if representation["log"] != "clipped_log10":
        return None
    return float(representation["log_floor"])


def schema_defaults(block: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults of a schema object's properties (copies)."""
    return {k: copy.deepcopy(v["default"]) for k, v in block["properties"].items()
            if "default" in v}


def _refuse_removed_keys(config: Mapping[str, Any], names: list[str]) -> None:
    """A ConfigError for a key of REMOVED_MODEL_KEYS in ``model_defaults`` or the models
    ``names`` (clearer than the schema's unknown-key error)."""
    blocks = [("model_defaults", config.get("model_defaults"))]
    blocks += [(f"models/{n}", (config.get("models") or {}).get(n)) for n in names]
    for where, block in blocks:
        if not isinstance(block, Mapping):
            continue
        for key, why in REMOVED_MODEL_KEYS.items():
            if key in block:
                raise ConfigError(f"config key '{where}/{key}': {why}. Fix: delete the key.")


def derive_seed(seed: int, *parts: object) -> int:
    """A stable 31-bit seed from a base seed and names (same inputs, same seed)."""
    text = ":".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def load_config(path: str | Path) -> dict[str, Any]:
    with open(path) as fh:
        return validate_config(yaml.safe_load(fh) or {})
