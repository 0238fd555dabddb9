"""Image data sets (``data.layout: images``): ingest and render for a table of image files.

The metadata's ``features_path`` names one image per sample (PNG, TIFF or anything else
Pillow reads, any size). The stages keep the contracts of the run layouts, so folds,
train, predict, baselines and the ensemble work unchanged:

- ingest (:func:`ingest_image_shard`): each file is opened and decoded once (a missing,
  empty, unreadable or truncated file is an :class:`~spectrovision.errors.InputError`
  naming it and the fix; ``features_md5_hash`` is checked when given) and cached as
  ``runs/shard{k}/{sample_id}.npy``: ``(height, width, channels)`` pixels, channels 1
  (grey) or 3 (colour), dtype ``uint8``, ``uint16`` or ``float32`` as decoded. Mode
  conversions: bilevel and palette images become grey/RGB, alpha is dropped, CMYK/YCbCr/
  LAB/HSV become RGB; 32-bit integer pixels are clipped to 0..65535 (16-bit), float
  pixels to [0, 1] (each clipped pixel counted). Multi-frame files use their first frame.
  The shard's QC table has one row per image (:data:`IMAGE_QC_SCHEMA`).
- render (:func:`render_image_shard`, a representation with ``image_size``): pixels are
  scaled to [0, 1] (``uint8 / 255``, ``uint16 / 65535``, float as is), converted to the
  representation's ``channels`` (1: luminance ``0.299 R + 0.587 G + 0.114 B``; 3: grey
  repeated), resized per channel in float32 with Pillow's ``interpolation`` filter
  (antialiased when shrinking: the filter support scales with the reduction) to
  ``image_size = [height, width]``, clipped to [0, 1], stored as ``dtype``; shape
  ``(channels, height, width)``, the same as ``(C, n_mass, n_x)`` of a rendered run.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ConfigError, InputError
from ..io import write_npy, write_parquet, write_text

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

IMAGE_LAYOUT = "images"
IMAGE_KEYS = ("image_size", "channels", "interpolation", "dtype")  # a representation's keys
IMAGE_ONLY_KEYS = ("image_size", "channels", "interpolation")
INTERPOLATIONS = ("nearest", "box", "bilinear", "bicubic", "lanczos")
LUMINANCE = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as Pillow's L
RGB_MODES = ("CMYK", "YCbCr", "LAB", "HSV", "RGBA", "RGBX", "RGBa", "P", "PA")

IMAGE_QC_SCHEMA = pa.schema([
    ("sample_id", pa.string()), ("format", pa.string()), ("mode", pa.string()),
    ("height", pa.int64()), ("width", pa.int64()), ("channels", pa.int64()),
    ("bit_depth", pa.int64()), ("n_frames", pa.int64()), ("clipped_pixels", pa.int64()),
    ("md5_ok", pa.bool_()), ("md5", pa.string()), ("sha256", pa.string()),
])


# --- settings ------------------------------------------------------------------------------

def representation_settings(settings: Mapping[str, Any], layout: str) -> dict[str, Any]:
    """The keys of a representation that its layout uses: :data:`IMAGE_KEYS` for images,
    every other key for runs (so editing a key the layout ignores re-renders nothing)."""
    if layout == IMAGE_LAYOUT:
        return {k: settings[k] for k in IMAGE_KEYS if k in settings}
    return {k: v for k, v in settings.items() if k not in IMAGE_ONLY_KEYS}


def is_image_representation(settings: Mapping[str, Any]) -> bool:
    return "image_size" in settings


@dataclass(frozen=True)
class ImageSpec:
    """How a decoded image becomes a model input (keys of ``representations.<name>``)."""

    image_size: tuple[int, int] = (128, 128)
    channels: int = 1
    interpolation: str = "bilinear"
    dtype: str = "float16"

    def __post_init__(self) -> None:
        size = tuple(int(v) for v in self.image_size)
        if len(size) != 2 or min(size) < 8:
            raise ConfigError(f"representation key 'image_size' must be [height, width], each "
                              f">= 8, got {list(self.image_size)}")
        object.__setattr__(self, "image_size", size)
        if self.channels not in (1, 3):
            raise ConfigError(f"representation key 'channels' must be 1 or 3, got "
                              f"{self.channels}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"representation key 'interpolation': '{self.interpolation}' is "
                              f"not one of {list(INTERPOLATIONS)}")
        if self.dtype not in ("float16", "float32"):
            raise ConfigError(f"representation key 'dtype': '{self.dtype}' is not one of "
                              "['float16', 'float32']")

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> ImageSpec:
        return cls(**{k: settings[k] for k in IMAGE_KEYS if k in settings})

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.image_size)


# --- ingest ----------------------------------------------------------------------------------

def open_image(path: Path, data: bytes) -> Any:
    """The decoded Pillow image (first frame); unreadable or truncated files raise."""
    from PIL import Image, UnidentifiedImageError

    try:
        picture = Image.open(io.BytesIO(data))
        picture.seek(0)
        picture.load()
    except UnidentifiedImageError:
        raise InputError(path, "not an image Pillow can read (unknown or corrupt format)",
                         "re-export it as PNG or TIFF, or remove the sample from the metadata"
                         ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"the image cannot be decoded ({exc})",
                         "the file is truncated or corrupt: copy or export it again, or "
                         "remove the sample from the metadata") from None
    return picture


def image_pixels(picture: Any) -> tuple[np.ndarray, int]:
    """``(height, width, 1 or 3)`` pixels (uint8, uint16 or float32) of a Pillow image and
    the number of pixels clipped into range (see the module docstring)."""
    mode = picture.mode
    if mode == "1":
        picture, mode = picture.convert("L"), "L"
    elif mode == "LA":
        picture, mode = picture.getchannel("L"), "L"
    elif mode in RGB_MODES:
        picture, mode = picture.convert("RGB"), "RGB"
    pixels = np.asarray(picture)
    clipped = 0
    if pixels.dtype.kind in "iu" and pixels.dtype.itemsize > 1:
        wide = pixels.astype(np.int64)
        clipped = int(((wide < 0) | (wide > 65535)).sum())
        pixels = np.clip(wide, 0, 65535).astype(np.uint16)
    elif pixels.dtype.kind == "f":
        finite = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        clipped = int(((finite < 0) | (finite > 1) | ~np.isfinite(pixels)).sum())
        pixels = np.clip(finite, 0.0, 1.0)
    elif pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] not in (1, 3):
        raise ValueError(f"unexpected channel count {pixels.shape[2]} for mode {mode}")
    return np.ascontiguousarray(pixels), clipped


def ingest_image(path: PathLike, expected_md5: str | None = None, check_md5: bool = True
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    """Read, check and decode one image file: ``(pixels, QC record)``."""
    from .ingest import check_md5 as compare_md5
    from .ingest import read_raw_bytes

    path = Path(path)
    try:
        data = read_raw_bytes(path)
    except InputError as exc:
        raise InputError(path, exc.problem.replace("run file", "image file"), exc.fix) from None
    md5_ok = None
    if check_md5 and expected_md5:
        compare_md5(path, data, expected_md5)
        md5_ok = True
    picture = open_image(path, data)
    pixels, clipped = image_pixels(picture)
    record = {"format": str(picture.format or path.suffix.lstrip(".").upper()),
              "mode": str(picture.mode), "height": int(pixels.shape[0]),
              "width": int(pixels.shape[1]), "channels": int(pixels.shape[2]),
              "bit_depth": 32 if pixels.dtype.kind == "f" else 8 * pixels.dtype.itemsize,
              "n_frames": int(getattr(picture, "n_frames", 1)), "clipped_pixels": clipped,
              "md5_ok": md5_ok, "md5": hashlib.md5(data).hexdigest(),
              "sha256": hashlib.sha256(data).hexdigest()}
    return pixels, record


def image_qc_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame(list(rows), columns=IMAGE_QC_SCHEMA.names)
    table["md5_ok"] = table["md5_ok"].astype("boolean")
    return table


def ingest_image_shard(records: Sequence[Mapping[str, Any]], out_dir: PathLike,
                       qc_out_path: PathLike, qc_cfg: Mapping[str, Any] | None = None
                       ) -> pd.DataFrame:
    """Decode every image of a shard to ``{out_dir}/{sample_id}.npy`` and write the shard's
    QC table to ``qc_out_path``; return it. ``records`` hold ``sample_id``,
    ``features_path`` and ``md5`` (sample-sheet rows); ``qc_cfg['check_md5']`` is used."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check = bool((qc_cfg or {}).get("check_md5", True))
    rows = []
    for rec in records:
        expected = rec.get("md5") if isinstance(rec.get("md5"), str) else None
        pixels, record = ingest_image(rec["features_path"], expected, check)
        write_npy(out_dir / f"{rec['sample_id']}.npy", pixels)
        rows.append({"sample_id": str(rec["sample_id"]), **record})
    table = image_qc_table(rows)
    write_parquet(qc_out_path, table, schema=IMAGE_QC_SCHEMA)
    log.info("ingested %d images into %s", len(table), out_dir)
    return table


def summarize_image_qc(shard_tables: Iterable[PathLike | pd.DataFrame],
                       sheet_findings: Mapping[str, Sequence[str]] | None = None
                       ) -> tuple[pd.DataFrame, str]:
    """All shards' image QC as one table and a Markdown summary (formats, modes, sizes,
    clipped pixels, checksums, sample-sheet findings)."""
    from .ingest import read_qc_tables, sheet_lines

    qc = read_qc_tables(shard_tables)
    if qc.empty:
        qc = image_qc_table([])
    lines = ["# Ingest QC summary (images)", "", f"{len(qc)} images decoded.", ""]
    if len(qc):
        checked = int(qc["md5_ok"].fillna(False).astype(bool).sum())
        sizes = qc[["height", "width"]].drop_duplicates()
        kinds = qc.groupby(["format", "mode"]).size()
        lines += [
            f"Checksums: {checked} of {len(qc)} images matched features_md5_hash; the others "
            "had none given or were not checked (qc.check_md5). A mismatch stops ingest.", "",
            f"Sizes: height {int(qc['height'].min())}-{int(qc['height'].max())}, width "
            f"{int(qc['width'].min())}-{int(qc['width'].max())} pixels ({len(sizes)} distinct "
            "sizes; each representation resizes to its image_size).", "",
            "| format | mode | images |", "|---|---|---:|",
            *[f"| {fmt} | {mode} | {int(n)} |" for (fmt, mode), n in kinds.items()], "",
            f"Clipped pixels (32-bit integer or float values out of range): "
            f"{int(qc['clipped_pixels'].sum()):,} in "
            f"{int((qc['clipped_pixels'] > 0).sum())} images.", "",
            f"Multi-frame files (first frame used): {int((qc['n_frames'] > 1).sum())}.", ""]
    lines += sheet_lines(sheet_findings or {})
    return qc, "\n".join(lines).rstrip() + "\n"


def write_image_qc_summary(shard_tables: Iterable[PathLike | pd.DataFrame], qc_path: PathLike,
                           summary_path: PathLike,
                           sheet_findings: Mapping[str, Sequence[str]] | None = None) -> None:
    qc, text = summarize_image_qc(shard_tables, sheet_findings)
    write_parquet(qc_path, qc, schema=IMAGE_QC_SCHEMA)
    write_text(summary_path, text)


# --- render ----------------------------------------------------------------------------------

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
