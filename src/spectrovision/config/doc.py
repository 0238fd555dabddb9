"""Render the config schema as Markdown (config/README.md), so the docs cannot drift."""

from __future__ import annotations

import json
from typing import Any

from .schema import load_schema

HEADER = """# Configuration keys

Generated from `src/spectrovision/config/config.schema.yaml` by `spectrovision config-doc`
(the test suite fails when this file is out of date). A config file names only what it
changes: every key below has a default, filled in when the file is validated.
`config/config.yaml` is the demo run; copy it for your own data.

Model keys (under `models: {name: ...}`) fall back to `model_defaults:`, then to the
defaults listed under *models.\\**. Edits re-run exactly the affected jobs: every value
below reaches its rule through `params:`.
"""


def _fmt(value: Any) -> str:
    return "`" + json.dumps(value) + "`"


def _rows(node: dict[str, Any], prefix: str, root: dict[str, Any]) -> list[str]:
    rows: list[str] = []
    if "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    for key, sub in node.get("properties", {}).items():
        name = f"{prefix}{key}"
        kind = sub.get("type", "object")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        if "enum" in sub:
            kind = " \\| ".join(f"`{v}`" for v in sub["enum"])
        default = _fmt(sub["default"]) if "default" in sub else "required"
        desc = " ".join(str(sub.get("description", "")).split())
        rows.append(f"| `{name}` | {kind} | {default} | {desc} |")
        rows += _rows(sub, name + ".", root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        rows += _rows(extra, prefix + "*.", root)
    return rows


def schema_markdown(schema: dict[str, Any] | None = None) -> str:
    schema = schema or load_schema()
    lines = [HEADER, "| key | type | default | meaning |", "|---|---|---|---|"]
    lines += _rows(schema, "", schema)
    return "\n".join(lines) + "\n"
