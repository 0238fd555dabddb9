"""Configuration: the packaged JSON Schema (single source of defaults), validation, model resolution, seeds, the config doc."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "checks": ['check_member_names', 'chosen_representation', 'novelty_representation', 'analysis_model', 'check_task', 'check_config'],
    "doc": ['schema_markdown'],
    "schema": ['load_schema', 'validate_config', 'resolve_model', 'render_log_floor', 'derive_seed', 'load_config'],
    "typed": ['settings_from', 'as_dict'],
})
