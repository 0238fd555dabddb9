"""The one way a render spec takes its keys: from a validated representation.

:class:`~spectrovision.render.runs.RenderSpec` and
:class:`~spectrovision.render.images.ImageSpec` have no defaults of their own; the schema
(config/config.schema.yaml) is the one source of defaults, filled in by
``config.validate_config`` (or ``config.schema.representation_block`` for one
representation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from ..errors import ConfigError


def spec_keys(cls: type, settings: Mapping[str, Any], ignored: Sequence[str] = ()
              ) -> dict[str, Any]:
    """The keys of the dataclass ``cls`` taken from a validated representation's
    ``settings``: a key it lacks is a ConfigError saying to validate first (the schema holds
    the defaults); a key neither ``cls`` nor ``ignored`` knows is a ConfigError too."""
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(settings) - set(known) - set(ignored))
    if unknown:
        raise ConfigError(f"unknown representation keys {unknown}; known keys: {sorted(known)}")
    missing = [name for name in known if name not in settings]
    if missing:
        raise ConfigError(f"representation keys {missing} are missing: build the "
                          f"{cls.__name__} from a validated representation (config."
                          "validate_config, or config.schema.representation_block for one), "
                          "which fills the schema's defaults")
    return {name: settings[name] for name in known}
