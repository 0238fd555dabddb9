"""Image data sets (``data.layout: images``): ingest and QC of a table of image files.

The metadata's ``features_path`` names one image per sample (PNG, TIFF or anything else
Pillow reads, any size). Each file is opened and decoded once (:func:`ingest_image_shard`;
a missing, empty, unreadable or truncated file is an
:class:`~spectrovision.errors.InputError` naming it and the fix; ``features_md5_hash`` is
checked when given) and cached as ``runs/shard{k}/{sample_id}.npy``: ``(height, width,
channels)`` pixels, channels 1 (grey) or 3 (colour), dtype ``uint8``, ``uint16`` or
``float32`` as decoded. Mode conversions: bilevel and palette images become grey/RGB,
alpha is dropped, CMYK/YCbCr/LAB/HSV become RGB; 32-bit integer pixels are clipped to
0..65535 (16-bit), float pixels to [0, 1] (each clipped pixel counted). Multi-frame files
use their first frame. The shard's QC table has one row per image (:data:`IMAGE_QC_SCHEMA`).
Rendering the decoded pixels is :mod:`spectrovision.render.images`.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .ingest import (check_md5, file_digests, ingest_records, read_qc_tables, read_raw_bytes,
                     sample_findings, sheet_lines)
from ..errors import InputError
from ..io import write_npy

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

RGB_MODES = ("CMYK", "YCbCr", "LAB", "HSV", "RGBA", "RGBX", "RGBa", "P", "PA")

IMAGE_QC_SCHEMA = pa.schema([
    ("sample_id", pa.string()), ("format", pa.string()), ("mode", pa.string()),
    ("height", pa.int64()), ("width", pa.int64()), ("channels", pa.int64()),
    ("bit_depth", pa.int64()), ("n_frames", pa.int64()), ("clipped_pixels", pa.int64()),
    ("md5_ok", pa.bool_()), ("md5", pa.string()), ("sha256", pa.string()),
])


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


def ingest_image(path: PathLike, expected_md5: str | None = None, verify_md5: bool = True
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    """Read, check and decode one image file: ``(pixels, QC record)``."""
    path = Path(path)
    data = read_raw_bytes(path, "image file")
    md5, sha256 = file_digests(data)
    md5_ok = None
    if verify_md5 and expected_md5:
        check_md5(path, data, expected_md5, found=md5)
        md5_ok = True
    picture = open_image(path, data)
    pixels, clipped = image_pixels(picture)
    record = {"format": str(picture.format or path.suffix.lstrip(".").upper()),
              "mode": str(picture.mode), "height": int(pixels.shape[0]),
              "width": int(pixels.shape[1]), "channels": int(pixels.shape[2]),
              "bit_depth": 32 if pixels.dtype.kind == "f" else 8 * pixels.dtype.itemsize,
              "n_frames": int(getattr(picture, "n_frames", 1)), "clipped_pixels": clipped,
              "md5_ok": md5_ok, "md5": md5, "sha256": sha256}
    return pixels, record


def ingest_image_shard(records: Sequence[Mapping[str, Any]], out_dir: PathLike,
                       qc_out_path: PathLike, verify_md5: bool) -> pd.DataFrame:
    """Decode every image of a shard to ``{out_dir}/{sample_id}.npy`` and write the shard's
    QC table to ``qc_out_path``; return it. ``records`` hold ``sample_id``,
    ``features_path`` and ``md5`` (sample-sheet rows); ``verify_md5`` = ``qc.check_md5``."""
    table = ingest_records(records, out_dir, qc_out_path,
                           lambda path, md5: ingest_image(path, md5, verify_md5),
                           IMAGE_QC_SCHEMA, write=write_npy, suffix=".npy")
    log.info("ingested %d images into %s", len(table), out_dir)
    return table


def summarize_image_qc(shard_tables: Iterable[PathLike | pd.DataFrame],
                       sheet_findings: Mapping[str, Sequence[str]] | None = None
                       ) -> tuple[pd.DataFrame, str]:
    """All shards' image QC as one table and a Markdown summary (formats, modes, sizes,
    clipped pixels, checksums, sample-sheet findings)."""
    qc = read_qc_tables(shard_tables, IMAGE_QC_SCHEMA)
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
    lines += sheet_lines(sample_findings(qc, sheet_findings))
    return qc, "\n".join(lines).rstrip() + "\n"
