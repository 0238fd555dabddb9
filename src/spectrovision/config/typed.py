"""Typed settings: frozen dataclasses built once from validated config values.

The schema is the single source of defaults: :func:`validate_config` and
:func:`resolve_model` fill every key, so a settings class declares fields without defaults
and :func:`settings_from` refuses a mapping that lacks one (a key the schema does not
default, or a caller that skipped validation) instead of guessing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from ..errors import ConfigError

T = TypeVar("T")


def settings_from(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """An instance of the dataclass ``cls`` from the validated mapping ``values`` (keys
    that ``cls`` does not declare are ignored); ``where`` names the config key in errors."""
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    missing = [f.name for f in fields if f.name not in values]
    if missing:
        raise ConfigError(f"config key '{where}': settings {missing} are missing. Fix: build "
                          "settings from a config validated by validate_config, which fills "
                          "every default from the schema.")
    return cls(**{f.name: values[f.name] for f in fields})


def as_dict(settings: Any) -> dict[str, Any]:
    """A settings object as a plain dict (for params, provenance and checkpoints)."""
    return dataclasses.asdict(settings)
