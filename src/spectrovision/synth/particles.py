"""Demo image data: synthetic particle micrographs with per-particle measurements.

A stand-in for ice-core insoluble-particle data (one exclusive class per particle, an
image per particle and a table of numeric measurements). The default set has five classes
that differ in shape and texture:

=============  ===================================================================
class          look
=============  ===================================================================
``sphere``     round, smooth, brighter towards the centre (spherical shading)
``fibre``      long thin rod, slightly bent, faint stripes along its length
``crystal``    convex polygon (3-6 corners), flat facets of different brightness
``aggregate``  cluster of small discs with holes, dark and grainy
``flake``      irregular wavy outline, flat and dim with fine noise
=============  ===================================================================

``n_classes=10`` (``spectrovision particles-data --classes 10``) adds five classes, each
made to be confused with one of the five above (same texture, a nearby shape):

=============  ==============  ====================================================
class          near            look
=============  ==============  ====================================================
``ellipsoid``  ``sphere``      the sphere's shading, but elongated (axes 0.45-0.65)
``rod``        ``fibre``       short thick needle: half the length, twice the width
``plate``      ``crystal``     thin faceted polygon: the crystal squashed to 0.25-0.42
``chain``      ``aggregate``   the aggregate's discs strung loosely along a line
``grain``      ``flake``       the flake's dim noisy body with a rough, jagged edge
=============  ==============  ====================================================

and its metadata is weak (:data:`METADATA_NOISE`): the class distributions of every
column overlap heavily, so the image, not the table, separates the classes.

Every particle has a random position, rotation and scale on a noisy background; images
come in varying sizes (non-square too) so the resize path is exercised, mostly 8-bit
grey PNG, some RGB PNG, 16-bit PNG, and 8- and 16-bit TIFF. The metadata columns are
class-dependent but overlapping (``area_um2``, ``aspect_ratio``, ``circularity``,
``mean_grey``) plus one uninformative column (``depth_m``). ``test_fraction`` of each class
is the unlabelled test split; ``heldout_labels=True`` also writes those images' classes
(``heldout_labels.csv``) for scoring a run's test predictions afterwards.

Entry point: :func:`generate_particle_dataset`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, write_csv

CLASSES: tuple[str, ...] = ("sphere", "fibre", "crystal", "aggregate", "flake")
# the 10-class set's additions, each near the class of CLASSES at the same position
CONFUSABLE_CLASSES: tuple[str, ...] = ("ellipsoid", "rod", "plate", "chain", "grain")
N_CLASSES = (5, 10)  # the class counts offered: CLASSES, or CLASSES + CONFUSABLE_CLASSES
METADATA_COLUMNS: tuple[str, ...] = ("area_um2", "aspect_ratio", "circularity", "mean_grey",
                                     "depth_m")
# class -> (median area in um^2, circularity mean, circularity sd)
CLASS_AREA = {"sphere": 80.0, "fibre": 60.0, "crystal": 150.0, "aggregate": 300.0,
              "flake": 220.0,
              "ellipsoid": 90.0, "rod": 70.0, "plate": 140.0, "chain": 260.0, "grain": 200.0}
CLASS_CIRCULARITY = {"sphere": (0.9, 0.05), "fibre": (0.3, 0.1), "crystal": (0.7, 0.08),
                     "aggregate": (0.5, 0.12), "flake": (0.6, 0.12),
                     "ellipsoid": (0.8, 0.06), "rod": (0.45, 0.1), "plate": (0.55, 0.1),
                     "chain": (0.4, 0.12), "grain": (0.5, 0.12)}
# by class count: (area lognormal sigma, aspect-ratio lognormal sigma, circularity sd
# factor, mean_grey noise sd); the 10-class set's metadata is weak (heavy overlap)
METADATA_NOISE = {5: (0.45, 0.08, 1.0, 0.06), 10: (0.9, 0.35, 3.0, 0.2)}
TEST_FRACTION = 0.2
# image i's file kind, by i % 10: mostly 8-bit grey PNG
FILE_KINDS = {3: ("tif", "L"), 5: ("png", "RGB"), 7: ("tif", "I;16"), 9: ("png", "I;16")}


def _grid(height: int, width: int, angle: float, centre: tuple[float, float],
          scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotated particle coordinates (u along the particle, v across), in units of ``scale``
    pixels, for every pixel of an image."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    dy, dx = (yy - centre[0]) / scale, (xx - centre[1]) / scale
    cos, sin = np.cos(angle), np.sin(angle)
    return cos * dx + sin * dy, -sin * dx + cos * dy


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Value noise in [0, 1]: a coarse random grid upsampled (bilinear) to ``shape``."""
    gh, gw = shape[0] // cell + 2, shape[1] // cell + 2
    coarse = rng.random((gh, gw))
    y = np.linspace(0, gh - 1.001, shape[0])
    x = np.linspace(0, gw - 1.001, shape[1])
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    c = coarse
    top = c[y0][:, x0] * (1 - fx) + c[y0][:, x0 + 1] * fx
    bottom = c[y0 + 1][:, x0] * (1 - fx) + c[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _faceted_polygon(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, height: int,
                     width: int, n_corners: tuple[int, int],
                     squash: tuple[float, float] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """A convex polygon of n jittered corners (n drawn from ``[lo, hi)`` of ``n_corners``) with
    flat facets of different brightness: ``(mask, texture)``; ``squash``: its width across
    scaled by a factor drawn from it."""
    n = int(rng.integers(*n_corners))
    step = 2 * np.pi / n  # corners in counter-clockwise order, jittered
    corners = rng.uniform(0, 2 * np.pi) + (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * step
    radius = rng.uniform(0.75, 1.0, n)
    if squash is not None:
        v = v / rng.uniform(*squash)
    mask = np.ones_like(u, dtype=bool)
    for k in range(n):  # inside every edge's half-plane (convex polygon)
        (au, av), (bu, bv) = ((radius[j] * np.cos(corners[j]), radius[j] * np.sin(corners[j]))
                              for j in (k, (k + 1) % n))
        mask &= (bu - au) * (v - av) - (bv - av) * (u - au) >= 0
    theta = (np.arctan2(v, u) - corners[0]) % (2 * np.pi)
    facet = (np.searchsorted(corners - corners[0], theta, side="right") - 1) % n
    return mask, rng.uniform(0.6, 0.95, n)[facet]


def _shaded_ellipse(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, height: int,
                    width: int, squash: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Round or elongated (width across scaled by a factor drawn from ``squash``), smooth,
    brighter towards the centre (spherical shading)."""
    rr = np.hypot(u, v / rng.uniform(*squash)) / rng.uniform(0.7, 1.0)
    texture = rng.uniform(0.45, 0.6) + 0.35 * np.sqrt(np.clip(1 - rr**2, 0, 1))
    return rr < 1, texture


def _striped_rod(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, height: int,
                 width: int, bend: float, length: tuple[float, float],
                 thickness: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A rod bent by up to ``bend``, half-length and half-thickness drawn from the ranges,
    faint stripes along its length."""
    vv = v - rng.uniform(-bend, bend) * u**2
    mask = (np.abs(u) < rng.uniform(*length)) & (np.abs(vv) < rng.uniform(*thickness))
    return mask, rng.uniform(0.45, 0.6) + 0.1 * np.sin(vv * 60)


def _holed_and_grainy(mask: np.ndarray, rng: np.random.Generator, height: int, width: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``mask`` with smooth-noise holes punched in it, and a dark grainy texture."""
    holes = _smooth_noise(rng, (height, width), max(2, height // 12)) > 0.7
    return mask & ~holes, rng.uniform(0.25, 0.4) + 0.2 * rng.random((height, width))


def _aggregate(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, height: int,
               width: int) -> tuple[np.ndarray, np.ndarray]:
    """A cluster of small discs around the centre, holed and grainy."""
    mask = np.zeros_like(u, dtype=bool)
    for _ in range(int(rng.integers(6, 12))):
        cu, cv = rng.normal(0, 0.45, 2)
        mask |= np.hypot(u - cu, v - cv) < rng.uniform(0.2, 0.4)
    return _holed_and_grainy(mask, rng, height, width)


def _chain(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, height: int,
           width: int) -> tuple[np.ndarray, np.ndarray]:
    """The aggregate's discs strung loosely along a line, holed and grainy."""
    mask = np.zeros_like(u, dtype=bool)
    n = int(rng.integers(5, 9))
    drift = np.cumsum(rng.normal(0, 0.1, n))
    for k, cu in enumerate(np.linspace(-0.95, 0.95, n) + rng.normal(0, 0.06, n)):
        mask |= np.hypot(u - cu, v - (drift[k] - drift.mean())) < rng.uniform(0.15, 0.27)
    return _holed_and_grainy(mask, rng, height, width)


def _wavy_body(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, height: int,
               width: int, harmonics: tuple[int, ...], amplitude: tuple[float, float]
               ) -> tuple[np.ndarray, np.ndarray]:
    """A flat, dim, finely noisy body whose outline waves with ``harmonics`` (each of an
    amplitude drawn from ``amplitude``): low ones a wavy edge, high ones a jagged one."""
    theta = np.arctan2(v, u)
    edge = np.ones_like(theta)
    for k in harmonics:
        edge += rng.uniform(*amplitude) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    mask = np.hypot(u, v / rng.uniform(0.55, 0.8)) < edge * rng.uniform(0.75, 0.95)
    return mask, rng.uniform(0.3, 0.42) + 0.06 * rng.standard_normal((height, width))


# class -> its shape: f(u, v, rng, height, width) -> (mask, texture); each of
# CONFUSABLE_CLASSES is its partner's shape with other parameters (or discs placed otherwise)
SHAPES: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "sphere": partial(_shaded_ellipse, squash=(0.85, 1.0)),
    "fibre": partial(_striped_rod, bend=0.4, length=(0.95, 1.2), thickness=(0.08, 0.16)),
    "crystal": partial(_faceted_polygon, n_corners=(3, 7)),
    "aggregate": _aggregate,
    "flake": partial(_wavy_body, harmonics=(2, 3, 5), amplitude=(0.05, 0.15)),
    "ellipsoid": partial(_shaded_ellipse, squash=(0.45, 0.65)),
    "rod": partial(_striped_rod, bend=0.2, length=(0.45, 0.65), thickness=(0.2, 0.3)),
    "plate": partial(_faceted_polygon, n_corners=(4, 8), squash=(0.25, 0.42)),
    "chain": _chain,
    "grain": partial(_wavy_body, harmonics=(2, 7, 11, 13), amplitude=(0.08, 0.16)),
}


def draw_particle(kind: str, rng: np.random.Generator, height: int, width: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One particle of class ``kind``: ``(mask bool, texture in [0, 1])`` of ``(height, width)``."""
    if kind not in SHAPES:
        raise ValueError(f"unknown particle class '{kind}'; choose one of "
                         f"{CLASSES + CONFUSABLE_CLASSES}")
    scale = min(height, width) * rng.uniform(0.3, 0.42)
    centre = (height / 2 + rng.uniform(-0.1, 0.1) * height,
              width / 2 + rng.uniform(-0.1, 0.1) * width)
    u, v = _grid(height, width, rng.uniform(0, np.pi), centre, scale)
    mask, texture = SHAPES[kind](u, v, rng, height, width)
    return mask, np.clip(texture, 0, 1)


def compose(mask: np.ndarray, texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The particle on a noisy background, grey levels in [0, 1]."""
    background = rng.uniform(0.05, 0.15) + 0.03 * rng.standard_normal(mask.shape)
    image = np.where(mask, texture, background) + 0.02 * rng.standard_normal(mask.shape)
    return np.clip(image, 0.0, 1.0)


def shape_measurements(mask: np.ndarray) -> tuple[float, float]:
    """Aspect ratio (major/minor axis from second moments) and circularity
    ``4 pi area / perimeter^2`` (perimeter = boundary pixels) of a mask."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 3:
        return 1.0, 1.0
    cov = np.cov(np.stack([ys, xs]).astype(np.float64))
    small, large = np.sort(np.clip(np.linalg.eigvalsh(cov), 1e-6, None))
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    perimeter = max(int((mask & ~inner).sum()), 1)
    return float(np.sqrt(large / small)), float(min(4 * np.pi * mask.sum() / perimeter**2, 1.0))


def particle_metadata(kind: str, mask: np.ndarray, image: np.ndarray,
                      rng: np.random.Generator, n_classes: int = 5) -> dict[str, float]:
    """Class-dependent, noisy measurements of one particle (plus the uninformative depth);
    the noise is ``METADATA_NOISE[n_classes]``'s."""
    area_sd, aspect_sd, circ_factor, grey_sd = METADATA_NOISE[n_classes]
    aspect, measured_circ = shape_measurements(mask)
    mean_c, sd_c = CLASS_CIRCULARITY[kind]
    inside = image[mask] if mask.any() else image.ravel()
    return {
        "area_um2": round(float(CLASS_AREA[kind] * rng.lognormal(0, area_sd)), 2),
        "aspect_ratio": round(aspect * float(rng.lognormal(0, aspect_sd)), 3),
        "circularity": round(float(np.clip(0.5 * rng.normal(mean_c, sd_c * circ_factor)
                                           + 0.5 * measured_circ, 0.02, 1.0)), 3),
        "mean_grey": round(float(inside.mean() + rng.normal(0, grey_sd)), 3),
        "depth_m": round(float(rng.uniform(0, 3000)), 1),
    }


def image_bytes_kind(index: int) -> tuple[str, str]:
    """(extension, Pillow mode) of image ``index``: mostly 8-bit grey PNG, some RGB PNG,
    16-bit PNG, 8-bit and 16-bit TIFF."""
    return FILE_KINDS.get(index % 10, ("png", "L"))


def save_image(path: Path, grey: np.ndarray, mode: str) -> None:
    """Write a [0, 1] grey image atomically as ``mode`` (L, RGB tinted, or I;16)."""
    from PIL import Image

    if mode == "RGB":
        tint = np.array([1.0, 0.93, 0.82])
        pixels = np.round(np.clip(grey[..., None] * tint, 0, 1) * 255).astype(np.uint8)
        picture = Image.fromarray(pixels, mode="RGB")
    elif mode == "I;16":
        picture = Image.fromarray(np.round(grey * 65535).astype(np.uint16))
    else:
        picture = Image.fromarray(np.round(grey * 255).astype(np.uint8))
    fmt = "TIFF" if path.suffix == ".tif" else "PNG"
    with atomic_path(path) as tmp:
        picture.save(tmp, format=fmt)


def classes_for(n_classes: int) -> tuple[str, ...]:
    """The class names of an ``n_classes`` set: :data:`CLASSES` (5) or those plus
    :data:`CONFUSABLE_CLASSES` (10)."""
    if n_classes not in N_CLASSES:
        raise ValueError(f"n_classes must be 5 or 10, got {n_classes!r}: 5 is "
                         f"{', '.join(CLASSES)}; 10 adds {', '.join(CONFUSABLE_CLASSES)}")
    return CLASSES if n_classes == 5 else CLASSES + CONFUSABLE_CLASSES


def balanced_classes(n_images: int, rng: np.random.Generator,
                     names: tuple[str, ...] = CLASSES) -> list[str]:
    """``n_images`` class names out of ``names``, as equal in number as possible, shuffled."""
    drawn = [names[i % len(names)] for i in range(n_images)]
    return [drawn[i] for i in rng.permutation(n_images)]


def test_split(classes: list[str], fraction: float) -> list[str]:
    """``test`` for the first ``fraction`` of each class (in order), ``train`` otherwise."""
    seen: dict[str, int] = {}
    totals = {c: classes.count(c) for c in set(classes)}
    splits = []
    for name in classes:
        seen[name] = seen.get(name, 0) + 1
        splits.append("test" if seen[name] <= round(fraction * totals[name]) else "train")
    return splits


def generate_particle_dataset(out_dir: str | Path, n_images: int = 300, seed: int = 0,
                              size: int = 64, test_fraction: float = TEST_FRACTION,
                              n_classes: int = 5, heldout_labels: bool = False) -> Path:
    """Write a particle image data set of ``n_images`` into ``out_dir``.

    Files: ``images/{sample_id}.{png|tif}`` (height and width each drawn from
    ``[3/4 size, 3/2 size]``), ``metadata.csv`` (``sample_id, split, features_path,
    features_md5_hash`` + :data:`METADATA_COLUMNS`), ``train_labels.csv`` (``sample_id`` +
    one-hot columns, one per class of :func:`classes_for` ``(n_classes)``: 5 or 10),
    ``submission_format.csv`` (test ids, ``1/n_classes`` each) and, with
    ``heldout_labels``, ``heldout_labels.csv`` (the test images' ``sample_id`` + one-hot
    columns). Classes are balanced; ``test_fraction`` (strictly between 0 and 1) of each
    class is the unlabelled test split. Deterministic for a seed. Returns ``out_dir``.
    """
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got "
                         f"{test_fraction}")
    names = classes_for(n_classes)
    out = Path(out_dir)
    classes = balanced_classes(n_images, np.random.default_rng([seed, n_images]), names)
    splits = test_split(classes, test_fraction)
    rows: list[dict[str, object]] = []
    for i, (kind, split) in enumerate(zip(classes, splits)):
        rng = np.random.default_rng([seed, i])
        height, width = (int(v) for v in rng.integers(size * 3 // 4, size * 3 // 2 + 1, 2))
        mask, texture = draw_particle(kind, rng, height, width)
        image = compose(mask, texture, rng)
        ext, mode = image_bytes_kind(i)
        sample_id = f"P{i:04d}"
        rel = f"images/{sample_id}.{ext}"
        save_image(out / rel, image, mode)
        md5 = hashlib.md5((out / rel).read_bytes()).hexdigest()
        rows.append({"sample_id": sample_id, "split": split, "features_path": rel,
                     "features_md5_hash": md5,
                     **particle_metadata(kind, mask, image, rng, n_classes), "class": kind})
    table = pd.DataFrame(rows)
    write_csv(out / "metadata.csv", table.drop(columns="class"))
    onehot = pd.DataFrame({name: (table["class"] == name).astype(int) for name in names})
    onehot.insert(0, "sample_id", table["sample_id"])
    write_csv(out / "train_labels.csv", onehot[table["split"] == "train"])
    template = table.loc[table["split"] == "test", ["sample_id"]].copy()
    for name in names:
        template[name] = round(1 / len(names), 6)
    write_csv(out / "submission_format.csv", template)
    if heldout_labels:
        write_csv(out / "heldout_labels.csv", onehot[table["split"] == "test"])
    return out
