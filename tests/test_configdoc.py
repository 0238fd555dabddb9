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
