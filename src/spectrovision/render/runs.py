"""Render one run (scans of ``time, mass, intensity[, temp]``) into an image.

An image has shape ``(C, n_mass, n_x)``: rows are integer m/z ``0 .. n_mass-1`` (or
``lo .. hi`` of ``mass_window``), columns are time (or temperature) bins. Each option of a
representation (config ``representations.<name>``, see :class:`RenderSpec`) acts in this
order:

1. x axis: ``time``, ``temp`` or ``bleed``. By default min-max scaled per sample over *all* rows of
   the run into ``n_x`` equal bins, ``bin = floor((x - min) / (max - min) * n_x)``; the
   last value falls in the last bin. A run with a single x value puts everything in bin 0.
   With ``x_window: [lo, hi]`` and ``x_step`` the axis is fixed instead, in the axis' units
   (degC for ``temp``, the run's time unit for ``time``): ``bin = floor((x - lo) / x_step)``,
   ``n_x`` is derived as ``(hi - lo) / x_step`` (a whole number, else a ConfigError; the
   configured ``n_x`` is ignored), ``x == hi`` falls in the last bin and scans outside
   ``[lo, hi]`` are dropped, so columns a run does not reach stay empty.
   ``bleed`` is a pseudo-temperature for GC-MS runs whose oven program (ramp rate, end
   temperature) varies from run to run: the column bleed (siloxane ions, e.g. m/z 207 and
   281, listed in ``bleed_masses``) rises monotonically, roughly exponentially, with the
   oven temperature, so its log intensity over the run's start level orders the scans by
   temperature whatever the ramp. Per run (:func:`bleed_axis`): the run's time span is cut
   into ``BLEED_BINS`` equal bins; in each, every bleed m/z's mean intensity per scan is
   taken and these means summed (bins with no bleed row are skipped; scans per bin = the
   median over bins of the most rows any bleed m/z has there, and a scan in which an m/z
   is missing, below the detector threshold, counts half that m/z's faintest row); the
   log of that is smoothed by a running median of ``BLEED_MEDIAN`` bins (compound peaks
   sharing a bleed ion are narrower) and made non-decreasing by isotonic regression; the axis is
   that fit minus its first value (e-folds of bleed over the start level: 0 during the
   initial hold, and for the demo's column 1 e-fold = 55 degC), interpolated at every
   row's time. A compound that elutes at a given temperature then lands in the same
   column on a slow and a fast ramp (with ``x_window`` also whatever the end temperature;
   min-max scaling still stretches each run to its own end). A run in which fewer than
   ``BLEED_MIN_BINS`` bins hold bleed rows, or whose fit rises by less than
   ``BLEED_MIN_RISE`` e-folds (the bleed does not even double), is an InputError naming
   the file: no bleed, no temperature estimate (render it with ``x_axis: time``).
2. masses: rows are m/z ``0 .. n_mass-1``, or ``lo .. hi`` with ``mass_window: [lo, hi]``
   (``n_mass`` is then derived as ``hi - lo + 1``); other masses are dropped. (Fractional
   m/z never reach the render: ingest rounds them, or drops those in ``qc.fractional_band``
   under ``qc.fractional_mass: drop_band``.)
3. ``background_subtraction``: each mass row's minimum over the run's kept scans (on the
   raw scan values, before binning) is subtracted from every scan of that mass.
4. ``aggregation``: intensities falling into one cell are summed (``sum``) or the
   largest is kept (``max``); empty cells are 0.
5. ``mass_scale``: the rows of the given m/z are multiplied by their factors (m/z that
   are not rows of the image are ignored).
6. ``background_quantile``: from each row the ``q`` quantile (numpy's linear method) of
   its non-empty cells is subtracted, and the result clipped at 0 (empty cells stay 0).
7. the image is divided by its maximum (when the maximum is > 0).
8. ``normalization``: ``none``; ``mass`` divides every row by its own max; ``time``
   divides every column by its own max (all-zero rows/columns stay 0).
9. ``log``: ``log1p1000`` = ``log10(1 + 1000 a) / log10(1001)`` (negative values count as
   0); ``clipped_log10`` = ``(log10(max(a, f)) - log10(f)) / -log10(f)`` with
   ``f = log_floor``, so ``[f, 1]`` maps to ``[0, 1]``; ``none`` keeps the values. (The
   Mars-1 winner's "divide by the run's max, clip at 1e-4, log10" is ``normalization:
   none``, ``log: clipped_log10``, ``log_floor: 1e-4``, up to this affine map to [0, 1].)
10. extra channels, in this order after the intensity channel: ``norm_channels`` adds
   normalised views of the image of step 7 (before ``normalization``), each mapped by
   ``log`` as in step 9: ``column_share`` divides every column by its sum over m/z,
   ``row_scaled`` every row by (its sum)^``row_power`` and then the channel by its max
   (empty columns/rows stay 0); ``coord_channels`` adds
   the x coordinate (``linspace(0, 1, n_x)`` along every row) and the mass coordinate
   (``linspace(0, 1, n_mass)`` down every column); ``derivatized_channel`` adds a
   constant plane holding the sample's derivatized flag.
11. ``dtype``: stored as ``float16`` or ``float32`` (computation is float64).

Every option beyond these defaults is off by default, and a representation that does not
use it renders exactly as before.

The hot path is vectorised numpy (``np.bincount`` / ``np.maximum.at``); there is no
pandas groupby. :func:`render_shard` renders a shard of cached runs to NPY files and
:func:`stack_split` stacks a split's images into one memory-mappable array.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..errors import ConfigError, InputError
from ..io import atomic_path, write_csv, write_npy
from .spec import spec_keys

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
RunData = pd.DataFrame | Mapping[str, np.ndarray]

BLEED_BINS = 64  # time bins of the bleed estimate (x_axis: bleed)
BLEED_MEDIAN = 7  # bins of its running median
BLEED_MIN_BINS = 8  # bins that must hold bleed rows
BLEED_MIN_RISE = float(np.log(2.0))  # e-folds the fit must rise over the run


@dataclass(frozen=True)
class RenderSpec:
    """How a run becomes an image; field names are the config keys of
    ``representations.<name>``. It has no defaults of its own: build it with
    :meth:`from_config` from a validated representation (``config.validate_config``, or
    ``config.schema.representation_block`` for one representation), whose defaults, allowed
    values and ranges come from the schema (config/config.schema.yaml in this package), the
    one source of them. Only what the schema cannot say is checked here (a window's step,
    ``mass_window`` order, ``bleed_masses`` with ``x_axis: bleed``).

    - ``x_axis``: ``time``, ``temp`` (the run needs a ``temp`` column) or ``bleed`` (a
      pseudo-temperature estimated from the column-bleed ions, see the module docstring).
    - ``bleed_masses``: the bleed m/z that ``x_axis: bleed`` reads (required by it, and
      only read by it); None = off.
    - ``n_mass``: mass rows, integer m/z ``0 .. n_mass-1``.
    - ``n_x``: time/temperature columns.
    - ``aggregation``: ``sum`` or ``max`` of the intensities in one cell.
    - ``background_subtraction``: subtract each mass row's run minimum before binning.
    - ``normalization``: ``none``, ``mass`` (row max = 1) or ``time`` (column max = 1).
    - ``log``: ``log1p1000``, ``clipped_log10`` or ``none``.
    - ``log_floor``: floor of ``clipped_log10``, in (0, 1).
    - ``x_window``/``x_step``: a fixed x axis ``[lo, hi]`` in steps of ``x_step`` (then
      ``n_x = (hi - lo) / x_step``); None = per-run min-max scaling.
    - ``mass_window``: rows for m/z ``lo .. hi`` (then ``n_mass = hi - lo + 1``).
    - ``mass_scale``: ``{m/z: factor}`` multiplying those rows (keys may be strings).
    - ``background_quantile``: subtract each row's quantile of its non-empty cells, clip 0.
    - ``norm_channels``: normalised views as more channels (``column_share``,
      ``row_scaled``), in the order listed; ``row_power``: the power of ``row_scaled``.
    - ``coord_channels``: add x- and mass-coordinate channels.
    - ``derivatized_channel``: add a constant channel holding the derivatized flag.
    - ``dtype``: ``float16`` or ``float32`` storage.
    """

    x_axis: str
    n_mass: int
    n_x: int
    aggregation: str
    background_subtraction: bool
    x_window: Sequence[float] | None
    x_step: float | None
    mass_window: Sequence[int] | None
    mass_scale: Mapping[Any, float]
    background_quantile: float | None
    normalization: str
    log: str
    log_floor: float
    norm_channels: Sequence[str]
    row_power: float
    coord_channels: bool
    derivatized_channel: bool
    dtype: str
    bleed_masses: Sequence[int] | None

    def __post_init__(self) -> None:
        if self.x_window is not None or self.x_step is not None:
            object.__setattr__(self, "n_x", window_columns(self.x_window, self.x_step))
        if self.mass_window is not None:
            lo, hi = pair(self.mass_window, "mass_window")
            if lo != int(lo) or hi != int(hi) or not 0 <= lo <= hi:
                raise ConfigError(f"representation key 'mass_window' must be two integer m/z "
                                  f"0 <= lo <= hi, got {list(self.mass_window)}")
            object.__setattr__(self, "n_mass", int(hi) - int(lo) + 1)
        object.__setattr__(self, "mass_scale", mass_factors(self.mass_scale))
        if (self.x_axis == "bleed") != (self.bleed_masses is not None):
            raise ConfigError("representation keys 'x_axis'/'bleed_masses': x_axis: bleed "
                              "needs bleed_masses (the column-bleed m/z, e.g. [207, 281]) and "
                              f"bleed_masses is only read by it; got x_axis: {self.x_axis}, "
                              f"bleed_masses: {self.bleed_masses}")
        if self.bleed_masses is not None:
            object.__setattr__(self, "bleed_masses", tuple(int(m) for m in self.bleed_masses))

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> RenderSpec:
        """Build from a validated representation's settings (every key present: the
        schema's defaults filled in)."""
        return cls(**spec_keys(cls, settings))

    @property
    def n_channels(self) -> int:
        return (1 + len(self.norm_channels) + 2 * self.coord_channels
                + self.derivatized_channel)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_channels, self.n_mass, self.n_x)

    @property
    def source_axis(self) -> str:
        """The run column the x axis is computed from (``bleed`` is estimated from time)."""
        return "time" if self.x_axis == "bleed" else self.x_axis

    @property
    def first_mass(self) -> int:
        """The m/z of row 0."""
        return 0 if self.mass_window is None else int(self.mass_window[0])


def pair(values: Sequence[float] | None, key: str) -> tuple[float, float]:
    """``[lo, hi]`` of a window key as two floats (a ConfigError naming ``key`` otherwise)."""
    if values is None or isinstance(values, str) or len(values) != 2:
        raise ConfigError(f"representation key '{key}' must be a pair [lo, hi], got {values}")
    return float(values[0]), float(values[1])


def window_columns(window: Sequence[float] | None, step: float | None) -> int:
    """Columns of a fixed x axis: ``(hi - lo) / step``, which must be a whole number >= 1."""
    if window is None or step is None:
        raise ConfigError("representation keys 'x_window' and 'x_step' go together: set both "
                          "(a fixed axis) or neither (per-run min-max scaling)")
    lo, hi = pair(window, "x_window")
    if not hi > lo or not step > 0:
        raise ConfigError(f"representation keys 'x_window'/'x_step' need lo < hi and a step "
                          f"> 0, got {list(window)} / {step}")
    columns = (hi - lo) / step
    n_x = int(round(columns))
    if abs(columns - n_x) > 1e-9 * columns:
        raise ConfigError(f"representation key 'x_step': (hi - lo) / x_step = {columns:g} is "
                          f"not a whole number of columns; pick a step that divides "
                          f"{hi - lo:g}")
    return n_x


def mass_factors(scale: Mapping[Any, float]) -> dict[int, float]:
    """``mass_scale`` with integer m/z keys (config keys may be strings) and factors >= 0."""
    factors: dict[int, float] = {}
    for key, factor in dict(scale).items():
        try:
            mz = int(key)
        except (TypeError, ValueError):
            raise ConfigError(f"representation key 'mass_scale': '{key}' is not an integer "
                              "m/z") from None
        if not float(factor) >= 0:
            raise ConfigError(f"representation key 'mass_scale': the factor of m/z {mz} must "
                              f"be >= 0, got {factor}")
        factors[mz] = float(factor)
    return factors


def run_arrays(run: RunData, spec: RenderSpec, source: PathLike = "run"
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The x (time or temp), mass and intensity columns of a run as numpy arrays."""
    names = (spec.source_axis, "mass", "intensity")
    present = set(run.columns) if isinstance(run, pd.DataFrame) else set(run)
    for name in names:
        if name not in present:
            fix = ("render temp runs only from layouts with a temperature column (mars1), or "
                   "set x_axis: time" if name == "temp" else "re-run ingest, which writes it")
            raise InputError(source, f"run has no '{name}' column (columns: {sorted(present)})",
                             fix, column=name)
    arrays = tuple(np.asarray(run[name]) for name in names)
    if not len(arrays[0]) == len(arrays[1]) == len(arrays[2]):
        raise InputError(source, f"columns have different lengths {[len(a) for a in arrays]}",
                         "give every column one value per row")
    return arrays  # type: ignore[return-value]


def x_bins(x: np.ndarray, n_x: int, keep: np.ndarray | None = None) -> np.ndarray:
    """Bin index (int64) of each x value after min-max scaling into ``n_x`` bins; the
    range is that of all of ``x``, the bins are returned for ``x[keep]`` when given."""
    x = np.asarray(x)
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(x.min()), float(x.max())
    chosen = x if keep is None else x.take(keep)
    span = hi - lo
    if not span > 0:
        return np.zeros(chosen.size, dtype=np.int64)
    bins = ((chosen.astype(np.float64) - lo) / span * n_x).astype(np.int64)
    np.minimum(bins, n_x - 1, out=bins)
    return bins


def subtract_mass_minimum(mass: np.ndarray, intensity: np.ndarray, n_mass: int) -> np.ndarray:
    """Intensities minus the minimum of their own mass over the run (masses < n_mass)."""
    minimum = np.full(n_mass, np.inf)
    np.minimum.at(minimum, mass, intensity)
    return intensity - minimum[mass]


def aggregate(cells: np.ndarray, values: np.ndarray, n_cells: int, how: str) -> np.ndarray:
    """Sum or max of ``values`` per flat cell index; empty cells are 0 (float64)."""
    if how == "sum":
        return np.bincount(cells, weights=values, minlength=n_cells).astype(np.float64)
    image = np.full(n_cells, -np.inf)
    np.maximum.at(image, cells, values)
    image[np.isneginf(image)] = 0.0
    return image


def window_bins(x: np.ndarray, window: Sequence[float], step: float, n_x: int) -> np.ndarray:
    """Bin index (int64) ``floor((x - lo) / step)`` of each x on the fixed axis
    ``window = [lo, hi]`` of ``n_x`` columns; ``hi`` falls in the last column, values
    outside ``[lo, hi]`` get -1."""
    lo, hi = pair(window, "x_window")
    x = np.asarray(x, dtype=np.float64)
    bins = np.floor((x - lo) / step).astype(np.int64)
    np.minimum(bins, n_x - 1, out=bins)
    bins[(x < lo) | (x > hi)] = -1
    return bins


def scale_masses(image: np.ndarray, factors: Mapping[int, float], first_mass: int) -> np.ndarray:
    """Rows of the m/z in ``factors`` multiplied by their factor (others unchanged)."""
    for mz, factor in factors.items():
        if 0 <= mz - first_mass < image.shape[0]:
            image[mz - first_mass] *= factor
    return image


def subtract_row_quantile(image: np.ndarray, filled: np.ndarray, q: float) -> np.ndarray:
    """Each row minus the ``q`` quantile of its ``filled`` cells, clipped at 0."""
    level = np.zeros(image.shape[0])
    rows = filled.any(axis=1)
    if rows.any():
        level[rows] = np.nanquantile(np.where(filled[rows], image[rows], np.nan), q, axis=1)
    return np.clip(image - level[:, None], 0.0, None)


def intensity_image(x: np.ndarray, mass: np.ndarray, intensity: np.ndarray,
                    spec: RenderSpec) -> np.ndarray:
    """The raw (n_mass, n_x) image: binned x, kept masses, optional background
    subtraction, aggregated per cell, then mass scaling and the background quantile."""
    mass = np.asarray(mass)
    first = spec.first_mass
    inside = (mass >= first) & (mass < first + spec.n_mass)
    window = (None if spec.x_window is None or spec.x_step is None
              else window_bins(x, spec.x_window, spec.x_step, spec.n_x))
    if window is not None:
        inside &= window >= 0
    keep = np.flatnonzero(inside)  # take() beats a bool mask
    if keep.size == mass.size:
        bins = x_bins(x, spec.n_x) if window is None else window
    else:
        bins = x_bins(x, spec.n_x, keep) if window is None else window.take(keep)
        mass, intensity = mass.take(keep), np.asarray(intensity).take(keep)
    mass = mass.astype(np.int64)
    if first:
        mass -= first
    values = np.asarray(intensity, dtype=np.float64)
    if spec.background_subtraction:
        values = subtract_mass_minimum(mass, values, spec.n_mass)
    cells = mass * spec.n_x + bins
    n_cells = spec.n_mass * spec.n_x
    image = aggregate(cells, values, n_cells, spec.aggregation).reshape(spec.n_mass, spec.n_x)
    if spec.mass_scale:
        image = scale_masses(image, spec.mass_scale, first)
    if spec.background_quantile is not None:
        filled = (np.bincount(cells, minlength=n_cells) > 0).reshape(image.shape)
        image = subtract_row_quantile(image, filled, spec.background_quantile)
    return image


def running_median(values: np.ndarray, width: int) -> np.ndarray:
    """Median over a centred window of ``width`` (odd) values, edges padded by repetition."""
    half = width // 2
    padded = np.pad(values, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)


def isotonic_increasing(values: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``values`` in least squares (pool adjacent
    violators, equal weights)."""
    means: list[float] = []
    sizes: list[int] = []
    for value in values.tolist():
        means.append(value)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            size = sizes[-2] + sizes[-1]
            means[-2] = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / size
            sizes[-2] = size
            del means[-1], sizes[-1]
    return np.repeat(means, sizes)


def bleed_axis(time: np.ndarray, mass: np.ndarray, intensity: np.ndarray,
               bleed_masses: Sequence[int], source: PathLike = "run") -> np.ndarray:
    """Pseudo-temperature of every row (e-folds of column bleed over the run's start
    level, see the module docstring); an InputError naming ``source`` when the run has
    no usable bleed."""
    time = np.asarray(time, dtype=np.float64)
    masses = np.unique(np.asarray(list(bleed_masses), dtype=np.int64))
    rows = np.flatnonzero(np.isin(mass, masses))
    fix = ("list this column's bleed ions in bleed_masses (siloxane phases: 207, 281, 73), "
           "or render this representation with x_axis: time")
    if rows.size == 0:
        raise InputError(source, f"no rows of the bleed m/z {masses.tolist()}: the "
                         "pseudo-temperature axis (x_axis: bleed) cannot be estimated", fix)
    bins = x_bins(time, BLEED_BINS, rows)
    which = np.searchsorted(masses, np.asarray(mass).take(rows))
    cells = which * BLEED_BINS + bins
    n_cells = masses.size * BLEED_BINS
    values = np.asarray(intensity, dtype=np.float64).take(rows)
    total = np.bincount(cells, weights=values, minlength=n_cells).reshape(masses.size, BLEED_BINS)
    count = np.bincount(cells, minlength=n_cells).reshape(masses.size, BLEED_BINS)
    valid = np.flatnonzero(count.any(axis=0))
    if valid.size < BLEED_MIN_BINS:
        raise InputError(source, f"bleed m/z {masses.tolist()} are present in {valid.size} of "
                         f"{BLEED_BINS} time bins (at least {BLEED_MIN_BINS} needed): too "
                         "little column bleed for the pseudo-temperature axis", fix)
    # Rows below the detector threshold are missing: the mean of the rows present would
    # overstate a faint bleed. Scans per bin = the median over bins of the most rows any
    # bleed ion has there; each missing row counts as half the ion's faintest row.
    scans = np.maximum(count, np.median(count.max(axis=0)[valid]))
    faint = np.full(masses.size, np.inf)
    np.minimum.at(faint, which, values)
    faint = np.where(np.isfinite(faint), faint, 0.0)[:, None]
    level = np.divide(total + (scans - count) * 0.5 * faint, scans,
                      out=np.zeros_like(total), where=scans > 0).sum(axis=0)
    fit = isotonic_increasing(running_median(np.log(level[valid]), BLEED_MEDIAN))
    rise = float(fit[-1] - fit[0])
    if rise < BLEED_MIN_RISE:
        raise InputError(source, f"the column bleed (m/z {masses.tolist()}) rises by "
                         f"{rise:.2f} e-folds over the run (at least {BLEED_MIN_RISE:.2f}, "
                         "a doubling, needed): no temperature ramp to estimate", fix)
    lo, hi = float(time.min()), float(time.max())
    centres = lo + (valid + 0.5) * (hi - lo) / BLEED_BINS
    return np.interp(time, centres, fit - fit[0])


def divide_by_max(image: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Divide by the max (of the whole image, or along ``axis``) where that max is > 0."""
    peak = image.max(axis=axis, keepdims=axis is not None)
    return np.divide(image, peak, out=image.copy(), where=peak > 0)


def normalize(image: np.ndarray, how: str) -> np.ndarray:
    """``mass``: every row by its max; ``time``: every column by its max; ``none``."""
    if how == "mass":
        return divide_by_max(image, axis=1)
    if how == "time":
        return divide_by_max(image, axis=0)
    return image


def column_share(image: np.ndarray) -> np.ndarray:
    """Every column divided by its sum over the rows (m/z): each ion's share of the column."""
    total = image.sum(axis=0, keepdims=True)
    return np.divide(image, total, out=np.zeros_like(image), where=total > 0)


def row_scaled(image: np.ndarray, power: float) -> np.ndarray:
    """Every row divided by (its sum over the columns)^``power``, then by the max."""
    total = image.sum(axis=1, keepdims=True)
    scaled = np.divide(image, total ** float(power), out=np.zeros_like(image), where=total > 0)
    return divide_by_max(scaled)


def norm_planes(image: np.ndarray, spec: RenderSpec) -> list[np.ndarray]:
    """The ``norm_channels`` of ``image`` (step 7's), each mapped by the spec's ``log``."""
    planes = {"column_share": lambda: column_share(image),
              "row_scaled": lambda: row_scaled(image, spec.row_power)}
    return [log_scale(planes[name](), spec.log, spec.log_floor) for name in spec.norm_channels]


def log_scale(image: np.ndarray, how: str, floor: float) -> np.ndarray:
    """Map a [0, 1] image to [0, 1] on a log scale (see the module docstring)."""
    if how == "log1p1000":
        return np.log10(1.0 + 1000.0 * np.clip(image, 0.0, None)) / np.log10(1001.0)
    if how == "clipped_log10":
        low = np.log10(floor)
        return (np.log10(np.maximum(image, floor)) - low) / -low
    return image


def unlog_scale(values: np.ndarray, how: str, floor: float) -> np.ndarray:
    """The inverse of :func:`log_scale`: rendered values back to linear intensity (the image
    of step 8, i.e. over the run's maximum with ``normalization: none``). ``clipped_log10``:
    ``floor ** (1 - v)`` for ``v > 0``, and 0 for ``v <= 0``, since such a cell was at or
    below the floor and its value is unknown (it counts as empty); ``log1p1000``:
    ``(1001 ** v - 1) / 1000``; ``none``: the values, negatives as 0."""
    values = np.asarray(values, dtype=np.float64)
    if how == "log1p1000":
        return (np.power(1001.0, np.clip(values, 0.0, None)) - 1.0) / 1000.0
    if how == "clipped_log10":
        return np.where(values > 0, np.power(float(floor), 1.0 - values), 0.0)
    return np.clip(values, 0.0, None)


def extra_channels(spec: RenderSpec, derivatized: float) -> list[np.ndarray]:
    """Coordinate channels (x, then mass) and the derivatized plane, as the spec asks."""
    planes: list[np.ndarray] = []
    if spec.coord_channels:
        planes.append(np.broadcast_to(np.linspace(0.0, 1.0, spec.n_x), (spec.n_mass, spec.n_x)))
        planes.append(np.broadcast_to(np.linspace(0.0, 1.0, spec.n_mass)[:, None],
                                      (spec.n_mass, spec.n_x)))
    if spec.derivatized_channel:
        planes.append(np.full((spec.n_mass, spec.n_x), float(derivatized)))
    return planes


def render_sample(run: RunData, spec: RenderSpec, derivatized: float = 0,
                  source: PathLike = "run") -> np.ndarray:
    """Render one run (DataFrame or dict of arrays with ``time``/``temp``, ``mass``
    (integer m/z), ``intensity``) into a ``spec.dtype`` array of shape ``spec.shape``.

    ``derivatized`` fills the derivatized channel; ``source`` names the run in errors.
    """
    x, mass, intensity = run_arrays(run, spec, source)
    if spec.bleed_masses is not None:
        x = bleed_axis(x, mass, intensity, spec.bleed_masses, source)
    image = divide_by_max(intensity_image(x, mass, intensity, spec))
    views = norm_planes(image, spec)
    image = log_scale(normalize(image, spec.normalization), spec.log, spec.log_floor)
    channels = [image, *views, *extra_channels(spec, derivatized)]
    return np.stack(channels).astype(spec.dtype)


def read_run(path: PathLike, spec: RenderSpec) -> dict[str, np.ndarray]:
    """The columns of a cached run (Parquet) that ``spec`` needs, as numpy arrays."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "cached run not found", "re-run ingest for this sample's shard")
    names = [spec.source_axis, "mass", "intensity"]
    parquet = pq.ParquetFile(path)
    present = parquet.schema_arrow.names
    missing = [n for n in names if n not in present]
    if missing:
        raise InputError(path, f"run has no column(s) {missing} (columns: {present})",
                         "set x_axis: time, or ingest runs that have a temperature column"
                         if missing == ["temp"] else "re-run ingest, which writes them",
                         column=missing[0])
    table = parquet.read(columns=names)
    return {n: table.column(n).to_numpy() for n in names}


def render_shard(run_dir: PathLike, sample_records: Sequence[Mapping[str, Any]],
                 out_dir: PathLike, spec: RenderSpec) -> list[Path]:
    """Render every sample of a shard from ``{run_dir}/{sample_id}.parquet`` to
    ``{out_dir}/{sample_id}.npy`` (each written atomically). A record holds
    ``sample_id`` and optionally ``derivatized`` (missing/None = 0). Returns the paths."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for record in sample_records:
        sample_id = str(record["sample_id"])
        source = run_dir / f"{sample_id}.parquet"
        flag = record.get("derivatized")
        image = render_sample(read_run(source, spec), spec, 0 if flag is None else flag, source)
        target = out_dir / f"{sample_id}.npy"
        write_npy(target, image)
        written.append(target)
    log.info("rendered %d samples from %s to %s", len(written), run_dir, out_dir)
    return written


def stack_split(npy_paths: Sequence[PathLike], sample_ids: Sequence[str], out_npy: PathLike,
                out_csv: PathLike) -> tuple[int, ...]:
    """Stack per-sample images into one ``(N, C, n_mass, n_x)`` NPY (readable with
    ``np.load(mmap_mode="r")``, written row by row, never held whole in memory) and a CSV
    of ``sample_id`` in row order. Both are written atomically. Returns the shape."""
    if len(npy_paths) != len(sample_ids):
        raise ValueError(f"{len(npy_paths)} images for {len(sample_ids)} sample ids")
    if not npy_paths:
        raise ValueError(f"no images to stack into {out_npy}")
    first = np.load(npy_paths[0], mmap_mode="r")
    shape = (len(npy_paths), *first.shape)
    with atomic_path(out_npy) as tmp:
        stack = np.lib.format.open_memmap(tmp, mode="w+", dtype=first.dtype, shape=shape)
        for row, path in enumerate(npy_paths):
            stack[row] = _matching_image(path, first.shape, first.dtype)
        stack.flush()
        del stack
    write_csv(out_csv, pd.DataFrame({"sample_id": list(map(str, sample_ids))}))
    return shape


def _matching_image(path: PathLike, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    image = np.load(path)
    if image.shape != shape or image.dtype != dtype:
        raise InputError(path, f"image is {image.dtype} {image.shape}, the split's first is "
                         f"{dtype} {shape}", "re-run the render rule of this representation")
    return image


def stack_splits(shard_dirs: Mapping[int, PathLike],
                 split_samples: Mapping[str, Sequence[Sequence[Any]]],
                 outputs: Mapping[str, tuple[PathLike, PathLike]]) -> dict[str, tuple[int, ...]]:
    """Stack every split of a representation. ``split_samples[split]`` lists
    ``(sample_id, shard)`` in row order; the image of a sample is
    ``{shard_dirs[shard]}/{sample_id}.npy``; ``outputs[split] = (stack.npy, ids.csv)``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for split, (out_npy, out_csv) in outputs.items():
        members = split_samples[split]
        paths = [Path(shard_dirs[int(shard)]) / f"{sample_id}.npy" for sample_id, shard in members]
        shapes[split] = stack_split(paths, [m[0] for m in members], out_npy, out_csv)
        log.info("stacked %s: %s", split, shapes[split])
    return shapes
