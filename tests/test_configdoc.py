"""config/README.md is generated from the schema and must be current."""

from __future__ import annotations

from pathlib import Path

from spectrovision.config.schema import load_schema
from spectrovision.config.doc import schema_markdown

REPO = Path(__file__).resolve().parents[1]


def test_config_readme_is_current():
    expected = schema_markdown()
    actual = (REPO / "config" / "README.md").read_text()
    assert actual == expected, "config/README.md is stale: run `spectrovision config-doc`"


def test_every_key_appears_once():
    text = schema_markdown()
    schema = load_schema()
    for key in schema["properties"]:
        assert text.count(f"| `{key}` |") == 1
    for key in schema["$defs"]["model"]["properties"]:
        assert f"| `models.*.{key}` |" in text


SCHEMA_KEYWORDS = {
    "$defs", "$ref", "$schema", "additionalProperties", "const", "default", "description",
    "enum", "exclusiveMaximum", "exclusiveMinimum", "items", "maxItems", "maxLength",
    "maximum", "minItems", "minLength", "minimum", "pattern", "properties", "propertyNames",
    "required", "title", "type", "uniqueItems", "oneOf", "anyOf", "allOf",
}


def test_schema_nodes_hold_only_json_schema_keywords():
    """An unquoted comma in a YAML flow mapping splits a description into a stray key
    (config/README.md then showed it cut short); every node must hold only keywords."""
    strays: list[str] = []

    def walk(node: object, path: str, named: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not named and key not in SCHEMA_KEYWORDS:
                    strays.append(f"{path}: {key!r}")
                walk(value, f"{path}/{key}", key in ("properties", "$defs"))
        elif isinstance(node, list):
            for item in node:
                walk(item, path, False)

    walk(load_schema(), "", False)
    assert strays == []
    row = next(line for line in schema_markdown().splitlines() if "`models.*.head`" in line)
    assert row.endswith("sed = attention head with per-time logits. |")
