"""Render decoded images (``data.layout: images``) into model inputs.

A representation with ``image_size`` (:class:`ImageSpec`): pixels are scaled to [0, 1]
(``uint8 / 255``, ``uint16 / 65535``, float as is), converted to the representation's
``channels`` (1: luminance ``0.299 R + 0.587 G + 0.114 B``; 3: grey repeated), resized per
channel in float32 with Pillow's ``interpolation`` filter (antialiased when shrinking: the
filter support scales with the reduction) to ``image_size = [height, width]``, clipped to
[0, 1], stored as ``dtype``; shape ``(channels, height, width)``, the same as
``(C, n_mass, n_x)`` of a rendered run. The decoded pixels are written by ingest
(:mod:`spectrovision.data.images`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from ..io import write_npy
from .spec import spec_keys

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

LUMINANCE = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as Pillow's L


@dataclass(frozen=True)
class ImageSpec:
    """How a decoded image becomes a model input (keys of ``representations.<name>``). No
    defaults or allowed values of its own: build it with :meth:`from_config` from a
    validated representation, whose defaults and enums come from the schema."""

    image_size: tuple[int, int]
    channels: int
    interpolation: str
    dtype: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> ImageSpec:
        """Build from a validated representation's settings (its image keys; the others
        are the run layouts')."""
        return cls(**spec_keys(cls, settings, ignored=list(settings)))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.image_size)


def unit_pixels(pixels: np.ndarray) -> np.ndarray:
    """Decoded pixels as float32 in [0, 1]: uint8 / 255, uint16 / 65535, float as is."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255.0
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / 65535.0
    return np.clip(pixels.astype(np.float32), 0.0, 1.0)


def convert_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """``(H, W, C)`` float image to ``channels`` (1: luminance of colour; 3: grey repeated)."""
    have = image.shape[2]
    if have == channels:
        return image
    if channels == 1:
        return (image @ LUMINANCE)[:, :, None]
    return np.repeat(image[:, :, :1], 3, axis=2)


def resize_plane(plane: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """One float32 ``(H, W)`` plane resized to ``size = (height, width)`` with Pillow."""
    from PIL import Image

    if plane.shape == tuple(size):
        return plane
    resample = getattr(Image.Resampling, interpolation.upper())
    resized = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F").resize(
        (int(size[1]), int(size[0])), resample=resample)
    return np.asarray(resized, dtype=np.float32)


def render_image(pixels: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Decoded ``(H, W, C)`` pixels -> ``spec.shape`` array of ``spec.dtype`` in [0, 1]."""
    image = convert_channels(unit_pixels(pixels), spec.channels)
    planes = [resize_plane(image[:, :, c], spec.image_size, spec.interpolation)
              for c in range(spec.channels)]
    return np.clip(np.stack(planes), 0.0, 1.0).astype(spec.dtype)


def read_decoded(path: PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "decoded image not found", "re-run ingest for this sample's shard")
    pixels = np.load(path)
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise InputError(path, f"decoded image has shape {pixels.shape}, not (H, W, 1 or 3)",
                         "re-run ingest for this sample's shard")
    return pixels


def render_image_shard(run_dir: PathLike, sample_records: Sequence[Mapping[str, Any]],
                       out_dir: PathLike, spec: ImageSpec) -> list[Path]:
    """Render every image of a shard from ``{run_dir}/{sample_id}.npy`` to
    ``{out_dir}/{sample_id}.npy`` (atomically). Returns the written paths."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for record in sample_records:
        sample_id = str(record["sample_id"])
        image = render_image(read_decoded(run_dir / f"{sample_id}.npy"), spec)
        target = out_dir / f"{sample_id}.npy"
        write_npy(target, image)
        written.append(target)
    log.info("rendered %d images from %s to %s", len(written), run_dir, out_dir)
    return written
