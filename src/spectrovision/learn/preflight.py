"""Parse-time check that every model can be built and run on its representation's images.

A backbone that timm (or the 1-D registry) cannot run at the image shape, e.g. a ViT
built for a fixed 224 x 224 input, would otherwise fail only once its train job starts.
:func:`check_models_build` builds each model at its image shape and runs a forward pass
at the narrowest and widest training width, raising a ConfigError that names the model
and what to change. What passed is remembered in a small cache file keyed by the model's
settings and the image shape, so only new or edited models are built again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def check_key(settings: Mapping[str, Any], shape: tuple[int, int, int], n_outputs: int) -> str:
    text = json.dumps({"settings": dict(settings), "shape": list(shape), "n": n_outputs},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def widths_to_try(settings: Mapping[str, Any], n_x: int) -> list[int]:
    """The time widths a model meets in training (its resize range, else the render's)."""
    resize = settings["time_resize"]
    return sorted({int(w) for w in resize}) if resize else [int(n_x)]


def check_model_builds(name: str, settings: Mapping[str, Any],
                       shape: tuple[int, int, int], n_outputs: int) -> None:
    """Build one model and run it on zeros of ``shape`` at each training width."""
    import torch

    from .models import create_model
    from .settings import model_settings

    typed = model_settings(settings)
    n_meta = len(typed.metadata_columns)
    try:
        model = create_model(typed, shape, n_outputs, n_meta)
        model.eval()
        with torch.no_grad():
            for width in widths_to_try(settings, shape[2]):
                x = torch.zeros(2, shape[0], shape[1], width)
                meta = torch.zeros(2, n_meta) if n_meta else None
                model(x, meta)
    except ConfigError:
        raise
    except Exception as exc:  # timm/torch say why in their own words: pass it on
        message = " ".join(str(exc).split())[:300]
        raise ConfigError(
            f"config key 'models/{name}/backbone': '{typed.backbone}' cannot run on the "
            f"images of representation '{typed.representation}' (channels x height x width "
            f"= {shape[0]} x {shape[1]} x {widths_to_try(settings, shape[2])}): "
            f"{type(exc).__name__}: {message}. Fix: choose a backbone that takes any image "
            "size (a CNN such as resnet18), or render the size the backbone was built for "
            "(n_mass / n_x, image_size) and set time_resize to match") from None


def check_models_build(models: Mapping[str, Mapping[str, Any]],
                       shapes: Mapping[str, tuple[int, int, int]], n_outputs: int,
                       cache: str | Path | None = None) -> list[str]:
    """Check every model (``models``: resolved settings by name; ``shapes``: image shape
    per representation). Returns the names built now (the others were cached)."""
    cache_path = Path(cache) if cache else None
    known: set[str] = set()
    if cache_path and cache_path.is_file():
        try:
            known = set(json.loads(cache_path.read_text()))
        except (json.JSONDecodeError, TypeError):
            known = set()
    built = []
    for name in sorted(models):
        settings = models[name]
        shape = tuple(shapes[settings["representation"]])
        key = check_key(settings, shape, n_outputs)
        if key in known:
            continue
        check_model_builds(name, settings, shape, n_outputs)
        known.add(key)
        built.append(name)
    if cache_path and built:
        from ..io import write_text

        cache_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(cache_path, json.dumps(sorted(known)))
    return built
