"""Typed settings of the learn stages: a model (``models.<name>``) and prediction (``predict:``).

Built once from validated config values with :func:`~spectrovision.config.typed.settings_from`;
the schema (``$defs/model`` and ``predict`` in ``config.schema.yaml``) is the single source
of their defaults, so no field has one here. Rule params stay plain dicts (Snakemake
compares them to decide re-runs); the library builds these classes from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..config.schema import load_schema, schema_defaults
from ..config.typed import settings_from

T = TypeVar("T")


@dataclass(frozen=True)
class ModelSettings:
    """One model's resolved settings (``resolve_model``: schema < model_defaults < model)."""

    name: str
    representation: str
    backbone: str
    net_width: int | None
    weights: str | None
    head: str
    in_chans: int | None
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: float
    lr_cycles: int
    grad_clip: float | None
    loss: str
    focal_gamma: float
    label_smoothing: float
    mixup_p: float
    time_resize: list[int] | None
    time_warp: list[float] | None
    scan_jitter: int
    scan_stride: int
    # derived, not a config key: the representation's log_floor for log: clipped_log10
    render_log_floor: float | None
    mass_scale_sigma: float
    global_scale_sigma: float
    background_mix_quantiles: list[float] | None
    sample_mix_p: float
    sample_mix_mode: str
    amp: bool
    channels_last: bool
    drop_rate: float
    keep_weights: str
    ema_decay: float | None
    average_last_epochs: int
    n_seeds: int
    precise_bn: bool
    validate_every: int
    metadata_columns: list[str]
    seed: int

    @classmethod
    def with_defaults(cls, values: Mapping[str, Any], where: str = "models") -> ModelSettings:
        """``values`` over the schema's model defaults, unvalidated: settings stored in a
        weights bundle before the schema gained a key, or a model built outside a config
        (tests, benchmarks; ``name`` and ``representation`` have no default). A config's
        models go through ``resolve_model`` and :func:`model_settings` instead.
        ``render_log_floor`` is no config key (``resolve_model`` derives it from the
        representation): None unless ``values`` set it."""
        return settings_from(cls, {"render_log_floor": None,
                                   **schema_defaults(load_schema()["$defs"]["model"]), **values},
                             where)


@dataclass(frozen=True)
class PredictSettings:
    """``predict:``: test-time time widths, augmented views and the batch size."""

    tta_n_widths: int
    tta_step: int
    tta_augment_n: int
    tta_augment_seed: int
    batch_size: int

    @classmethod
    def with_defaults(cls, values: Mapping[str, Any], where: str = "predict") -> PredictSettings:
        """``values`` over the schema's ``predict:`` defaults, unvalidated (a caller outside a
        config, e.g. tests; the predict rule passes every key)."""
        return settings_from(cls, {**schema_defaults(load_schema()["properties"]["predict"]),
                                   **values}, where)


def as_settings(cls: type[T], values: T | Mapping[str, Any], where: str) -> T:
    """``values`` as an instance of the settings class ``cls``: unchanged when it is one,
    else built from the mapping (e.g. a rule's params) naming ``where`` in errors."""
    return values if isinstance(values, cls) else settings_from(cls, values, where)


def model_settings(values: ModelSettings | Mapping[str, Any]) -> ModelSettings:
    """A model's settings from its resolved dict (the train rule's ``settings`` param)."""
    where = f"models/{values['name']}" if isinstance(values, Mapping) and "name" in values \
        else "models"
    return as_settings(ModelSettings, values, where)
