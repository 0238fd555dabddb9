"""Tabular members: per-label LightGBM on coarse render features plus metadata columns.

Task multiclass: one softmax LightGBM (objective ``multiclass``) over the classes instead,
its member tables holding log-probabilities. ``image_features: false`` makes a
metadata-only member (no render is read).

Features are the ones of the ``benchmark_lr`` baseline (channel 0 of a representation's
stacked renders max-pooled into ``time_bins`` bins per mass row, named ``m{mass}_t{bin}``)
plus chosen numeric or categorical metadata columns of the sample sheet. One binary
LightGBM per label is fitted per fold with :func:`.members.cross_fit` (the member interface
the baselines share), so the member files (OOF logits of every fold, test = the folds
combined by ``ensemble.fold_combine``) have exactly the format of the other members. A label with a single class in a
training fold is predicted by its training prevalence.

``peak_features: true`` adds peak features per mass row of channel 0 over the full render
width (:func:`peak_features`: height, position, area, width, and the maximum per column
band), named ``peak_{kind}_m{mass}`` and ``peak_max_m{mass}_b{band}``.
``early_stopping_rounds`` (on by default) splits each fold's training rows (seeded,
stratified on the label, or the class) into fit and validation rows and stops boosting on
the validation log loss (:func:`fit_booster`), so a member with a weak signal stays near
the prior; ``prior_fallback`` (on by default) then predicts a label (multiclass: every
class) by its training prevalence when the stopped booster's validation log loss is no
better than the fit rows' prevalence's. Both are decided inside each training fold.

Three more options (issue 19 item 4, the Mars-1 2nd place's LightGBM features), each off by
default: ``window_share_features`` adds each m/z's share of every x window of
``window_share_width`` axis units (:func:`window_share_features`, on linear intensity: the
representation's ``log`` undone by :func:`..render.runs.unlog_scale`);
``key_ion_ratios`` picks per label the ``key_ions`` m/z whose share of the run's total
intensity best separates the label's positives from its negatives in each training fold
(:func:`select_key_ions`) and adds their log shares and pairwise log ratios
(:func:`key_ion_features`); ``augment_copies`` rebuilds each training row that many more
times from its render with a random end trim and x offset (:func:`augment_images`), the
features recomputed and the labels copied, only ever on the fit side of a fold and of its
inner early-stopping split (:func:`split_with_copies`).

Feature contributions: LightGBM's TreeSHAP (``pred_contrib=True``) on the out-of-fold rows
of each fold; the mean absolute contribution per feature and label is written as a table
and drawn as a summary plot. Training is deterministic (fixed seed, ``deterministic=True``,
``force_row_wise=True``, a fixed thread count): same inputs, same outputs.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from .combine import combine_logits
from .members import (Renders, coarse_time_features, column_band_edges,
                      cross_fit, load_stack_features, stack_locations, unlabelled_ids)
from .fitted import fitted_record, write_fitted
from .tables import write_member_tables
from ..config.checks import chosen_representation
from ..config.schema import derive_seed
from ..config.typed import settings_from
from ..errors import ConfigError, InputError
from ..metrics import (clip_class_probs, clip_probs, mean_log_loss, multiclass_log_loss,
                       scores_of_probs, to_probs)
from ..registry import Registry
from ..render.runs import unlog_scale

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]
TOP_FEATURES = 20  # features drawn in the summary plot
SEED_MEAN_CLIP = 1e-7  # n_seeds: probabilities clipped before their logits are averaged
PEAK_KINDS = ("height", "pos", "area", "width")  # per mass row, then the band maxima
SHEET_INTERNAL = ("split", "features_path", "md5", "labelled", "shard")
#: tabular member kind -> its member class. One kind today, so no config key chooses it
#: (:data:`TABULAR_KIND`); a second kind adds a ``kind`` key (enum) to the schema's
#: ``tabular.<name>`` block.
TABULAR_MEMBERS: Registry[type[GBMMember]] = Registry("tabular member", "tabular/<name>")
TABULAR_KIND = "lightgbm"


# --- settings ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BoosterSettings:
    """The LightGBM keys of a tabular member's settings."""

    n_estimators: int
    learning_rate: float
    num_leaves: int
    min_child_samples: int
    feature_fraction: float
    seed: int
    early_stopping_rounds: int | None
    validation_fraction: float
    prior_fallback: bool
    n_seeds: int


@dataclass(frozen=True)
class TabularSettings(BoosterSettings):
    """One tabular member's resolved settings (``tabular.<name>``, representation and seed
    filled in; representation None = metadata only)."""

    representation: str | None
    time_bins: int
    image_features: bool
    metadata_columns: list[str]
    peak_features: bool
    peak_bands: int
    window_share_features: bool
    window_share_width: float
    key_ion_ratios: bool
    key_ions: int
    augment_copies: int
    augment_trim_fraction: float
    augment_max_shift: int
    # derived from the representation by resolve_tabular (None: metadata only)
    render_log: str | None
    render_log_floor: float | None
    window_columns: int | None  # columns per window of window_share_features


IMAGE_OPTIONS = ("peak_features", "window_share_features", "key_ion_ratios", "augment_copies")


def resolve_tabular(cfg: Mapping[str, Any], name: str,
                    sheet_columns: Sequence[str] | None = None) -> TabularSettings:
    """A tabular member's settings from the validated ``cfg`` with the representation (null =
    first by name) and the seed (null = derived from the global seed and the name) filled
    in; metadata columns are checked against ``sheet_columns`` when given."""
    if name not in cfg["tabular"]:
        raise ConfigError(f"tabular member '{name}' is not defined under 'tabular:'")
    settings = dict(cfg["tabular"][name])
    settings.update(render_log=None, render_log_floor=None, window_columns=None)
    if not settings["image_features"]:
        settings["representation"] = None  # metadata only: no render is read
        if not settings["metadata_columns"]:
            raise ConfigError(f"config key 'tabular/{name}/image_features': false needs "
                              "metadata_columns. Fix: list metadata columns, or set it true.")
        for key in IMAGE_OPTIONS:
            if settings[key]:
                raise ConfigError(f"config key 'tabular/{name}/{key}': {settings[key]} needs "
                                  "image features, but image_features is false. Fix: set "
                                  "one of them the other way.")
    else:
        reps = list(cfg["representations"])
        if settings["representation"] is None and not reps:
            raise ConfigError(f"config key 'tabular/{name}/representation': no representation "
                              "is defined. Fix: define one under 'representations:'.")
        settings["representation"] = chosen_representation(
            f"tabular/{name}/representation", settings["representation"], reps)
        settings.update(render_options(cfg, name, settings))
    if settings["seed"] is None:
        settings["seed"] = derive_seed(int(cfg["seed"]), "tabular", name)
    settings["metadata_columns"] = list(settings["metadata_columns"])
    if sheet_columns is not None:
        missing = [c for c in settings["metadata_columns"] if c not in sheet_columns]
        if missing:
            raise ConfigError(f"config key 'tabular/{name}/metadata_columns': column "
                              f"'{missing[0]}' is not in the sample sheet (it has "
                              f"{[c for c in sheet_columns if c not in SHEET_INTERNAL]}). "
                              "Fix: add it to data.metadata_columns, or drop it here.")
    return settings_from(TabularSettings, settings, f"tabular/{name}")


def render_options(cfg: Mapping[str, Any], name: str, settings: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """What the render options of tabular member ``name`` take from its representation:
    the ``log`` to undo (``render_log``, ``render_log_floor``) and the columns per window of
    ``window_share_features`` (``window_columns``); a ConfigError naming the key for a
    window that is not a whole number of columns, more key ions than m/z rows, or
    augmentation copies that would equal their source."""
    from ..data.layouts import get_layout

    key = f"tabular/{name}"
    rep = cfg["representations"][settings["representation"]]
    view = get_layout(cfg["data"]["layout"]).render_view(rep)
    axes = view["axes"]
    out = {"render_log": view["log"], "render_log_floor": float(rep["log_floor"])}
    if settings["window_share_features"]:
        lo, hi = axes["x_extent"]
        step = (hi - lo) / axes["n_x"]
        columns = float(settings["window_share_width"]) / step
        if abs(columns - round(columns)) > 1e-6 or round(columns) < 1:
            raise ConfigError(f"config key '{key}/window_share_width': "
                              f"{settings['window_share_width']} is not a whole number of "
                              f"columns of representation '{settings['representation']}' "
                              f"({step:g} axis units each; {axes['x_label']}). Fix: a "
                              "multiple of the column width.")
        out["window_columns"] = int(round(columns))
    if settings["key_ion_ratios"] and settings["key_ions"] > axes["n_mass"]:
        raise ConfigError(f"config key '{key}/key_ions': {settings['key_ions']} key ions, but "
                          f"representation '{settings['representation']}' has "
                          f"{axes['n_mass']} m/z rows. Fix: at most {axes['n_mass']}.")
    if settings["augment_copies"] and not (settings["augment_trim_fraction"]
                                           or settings["augment_max_shift"]):
        raise ConfigError(f"config key '{key}/augment_copies': copies with "
                          "augment_trim_fraction 0 and augment_max_shift 0 equal their "
                          "source rows. Fix: set one of them above 0, or augment_copies: 0.")
    return out


def fitted_settings(settings: Mapping[str, Any], name: str) -> TabularSettings:
    """The settings of a fitted record (:mod:`.fitted`) of tabular member ``name``; a key
    that a record written before the key existed lacks takes the schema's default (the
    options were off then) and a derived key None."""
    from ..config.schema import load_schema, schema_defaults

    block = load_schema()["properties"]["tabular"]["additionalProperties"]
    derived = {"render_log": None, "render_log_floor": None, "window_columns": None}
    return settings_from(TabularSettings, {**schema_defaults(block), **derived, **settings},
                         f"tabular/{name}")


@dataclass(frozen=True)
class GBMSettings(BoosterSettings):
    """LightGBM settings of one tabular member (one binary model per label and fold)."""

    num_threads: int

    @classmethod
    def from_settings(cls, settings: TabularSettings, num_threads: int) -> GBMSettings:
        """The LightGBM part of a tabular member's settings, with the job's thread count."""
        booster = {f.name: getattr(settings, f.name) for f in fields(BoosterSettings)}
        return cls(**booster, num_threads=int(num_threads))

    def params(self, num_class: int | None = None) -> dict[str, Any]:
        """LightGBM parameters: binary objective (softmax ``multiclass`` over ``num_class``
        classes when given), deterministic, quiet."""
        objective = {"objective": "binary"} if num_class is None else {
            "objective": "multiclass", "num_class": int(num_class)}
        return {
            **objective,
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_child_samples": int(self.min_child_samples),
            "min_data_per_group": int(self.min_child_samples),
            "feature_fraction": float(self.feature_fraction),
            "seed": int(self.seed),
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": max(1, int(self.num_threads)),
            "verbosity": -1,
        }


# --- features ----------------------------------------------------------------------------

@dataclass
class Copies:
    """Augmented copies of training rows (``augment_copies``): feature rows with the columns
    of :attr:`Features.values`, the sheet row each copy was made from, and their per-m/z
    linear intensity totals (with ``key_ion_ratios``)."""

    values: np.ndarray
    source: np.ndarray
    ion_totals: np.ndarray | None = None


@dataclass
class Features:
    """Feature matrix (rows = samples in sheet order), names, categorical columns; the
    first ``n_image`` columns are render features, the rest metadata. ``ion_totals``: each
    row's linear intensity summed per m/z row, ``(rows, n_mass)`` (the input of the key ion
    features, which are chosen per training fold); ``copies``: augmented copies of rows."""

    values: np.ndarray
    names: list[str]
    categorical: list[int] = field(default_factory=list)
    n_image: int = 0
    levels: dict[str, list[str]] = field(default_factory=dict)  # codes of text columns
    ion_totals: np.ndarray | None = None
    copies: Copies | None = None


def image_feature_names(n_mass: int, time_bins: int) -> list[str]:
    """``m{mass}_t{bin}`` in the column order of :func:`members.coarse_time_features`."""
    return [f"m{m}_t{t}" for m in range(n_mass) for t in range(time_bins)]


def peak_feature_names(n_mass: int, bands: int) -> list[str]:
    """``peak_{kind}_m{mass}`` per kind of :data:`PEAK_KINDS` then ``peak_max_m{mass}_b{band}``,
    in the column order of :func:`peak_features`."""
    names = [f"peak_{kind}_m{m}" for kind in PEAK_KINDS for m in range(n_mass)]
    return names + [f"peak_max_m{m}_b{b}" for m in range(n_mass) for b in range(bands)]


def peak_features(stack: np.ndarray, bands: int, chunk: int = 256) -> np.ndarray:
    """Peak features of channel 0 of ``(N, C, n_mass, n_x)`` images, per mass row over all
    columns: height (maximum), position (column of the first maximum / (n_x - 1); 0 = first
    column, 1 = last), area (sum), width (columns above half height, i.e. above the midpoint
    of the row's minimum and maximum; 0 for a flat row), then the maximum per band of
    ``bands`` near-equal column bands: ``(N, n_mass * (4 + bands))`` float64 (read in chunks;
    memmaps welcome)."""
    edges = column_band_edges(stack, bands, "peak_bands")
    n, _, n_mass, n_x = stack.shape
    out = np.empty((n, n_mass * (len(PEAK_KINDS) + bands)))
    for start in range(0, n, chunk):
        rows = np.asarray(stack[start:start + chunk, 0], dtype=np.float64)
        high, low = rows.max(axis=2), rows.min(axis=2)
        position = rows.argmax(axis=2) / max(n_x - 1, 1)
        width = (rows > ((high + low) / 2)[..., None]).sum(axis=2)
        band_max = np.maximum.reduceat(rows, edges[:-1], axis=2).reshape(len(rows), -1)
        out[start:start + len(rows)] = np.hstack([high, position, rows.sum(axis=2), width,
                                                  band_max])
    return out


def metadata_features(sheet: pd.DataFrame, columns: Sequence[str],
                      levels: Mapping[str, Sequence[str]] | None = None) -> Features:
    """Metadata columns as features: numbers (and booleans) as floats, anything else as
    integer codes of its sorted distinct values (a LightGBM categorical); missing = NaN.
    ``levels`` (the ``Features.levels`` of the sheet a member was fitted on) fixes the
    codes of text columns, so a new sheet is coded as the fitted one was (a value the
    fitted sheet did not hold = NaN) and a column that was numeric there is read as a
    number."""
    values = np.full((len(sheet), len(columns)), np.nan)
    categorical = []
    found: dict[str, list[str]] = {}
    for k, col in enumerate(columns):
        if col not in sheet.columns:
            raise InputError("sample sheet", f"metadata column '{col}' is missing (columns: "
                             f"{[c for c in sheet.columns if c not in SHEET_INTERNAL]})",
                             "add it to data.metadata_columns, or drop it from the tabular "
                             "member's metadata_columns", column=col)
        series = sheet[col]
        numeric = pd.to_numeric(series.astype(object).where(series.notna(), None),
                                errors="coerce")
        is_number = series.dtype == bool or numeric.notna().sum() == series.notna().sum()
        if (levels is None and is_number) or (levels is not None and col not in levels):
            values[:, k] = numeric.to_numpy(dtype=np.float64)
        else:
            text = series.astype(object).where(series.notna(), None)
            found[col] = (sorted({str(v) for v in text if v is not None}) if levels is None
                          else list(levels[col]))
            code = {v: i for i, v in enumerate(found[col])}
            values[:, k] = [np.nan if v is None else code.get(str(v), np.nan) for v in text]
            categorical.append(k)
    return Features(values, list(columns), categorical, levels=found)


def window_share_names(n_mass: int, n_windows: int) -> list[str]:
    """``share_m{mass}_w{window}`` in the column order of :func:`window_share_features`."""
    return [f"share_m{m}_w{w}" for m in range(n_mass) for w in range(n_windows)]


def linear_chunks(stack: np.ndarray, log: str | None, log_floor: float | None,
                  chunk: int = 256) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, linear intensity)`` of channel 0 of ``(N, C, n_mass, n_x)`` render
    images in chunks of rows: the representation's ``log`` undone
    (:func:`..render.runs.unlog_scale`; a cell at the ``clipped_log10`` floor counts 0)."""
    for start in range(0, stack.shape[0], chunk):
        yield start, unlog_scale(stack[start:start + chunk, 0], str(log), log_floor)


def window_share_features(stack: np.ndarray, columns: int, log: str | None,
                          log_floor: float | None) -> np.ndarray:
    """Each m/z row's share of every x window of ``columns`` columns (from column 0; the last
    window takes the columns left over): the row's linear intensity summed over the window
    divided by the sum over all rows of the window; NaN where the window holds nothing.
    ``(N, n_mass * n_windows)``, m/z-major."""
    n, _, n_mass, n_x = stack.shape
    starts = np.arange(0, n_x, int(columns))
    out = np.empty((n, n_mass * len(starts)))
    for start, linear in linear_chunks(stack, log, log_floor):
        sums = np.add.reduceat(linear, starts, axis=2)
        total = sums.sum(axis=1, keepdims=True)
        share = np.divide(sums, total, out=np.full_like(sums, np.nan), where=total > 0)
        out[start:start + len(linear)] = share.reshape(len(linear), -1)
    return out


def ion_totals(stack: np.ndarray, log: str | None, log_floor: float | None) -> np.ndarray:
    """Each m/z row's linear intensity summed over all columns: ``(N, n_mass)``."""
    out = np.empty(stack.shape[:1] + stack.shape[2:3])
    for start, linear in linear_chunks(stack, log, log_floor):
        out[start:start + len(linear)] = linear.sum(axis=2)
    return out


@dataclass(frozen=True)
class RenderFeatures:
    """What a tabular member computes from channel 0 of ``(N, C, n_mass, n_x)`` render
    images, in this column order: the ``time_bins`` cells
    (:func:`members.coarse_time_features`), with ``peak_bands`` the :func:`peak_features`,
    with ``window_columns`` the :func:`window_share_features`; then with ``ion_totals`` the
    :func:`ion_totals` (not features: :func:`build_features` splits them off). ``log`` and
    ``log_floor``: the representation's, undone for the shares and totals."""

    time_bins: int
    peak_bands: int | None = None
    window_columns: int | None = None
    ion_totals: bool = False
    log: str | None = None
    log_floor: float | None = None

    def names(self, n_mass: int, n_x: int) -> list[str]:
        """The feature names (without the totals)."""
        names = image_feature_names(n_mass, self.time_bins)
        if self.peak_bands is not None:
            names += peak_feature_names(n_mass, self.peak_bands)
        if self.window_columns is not None:
            names += window_share_names(n_mass, -(-n_x // self.window_columns))
        return names

    def __call__(self, stack: np.ndarray) -> np.ndarray:
        blocks = [coarse_time_features(stack, self.time_bins)]
        if self.peak_bands is not None:
            blocks.append(peak_features(stack, self.peak_bands))
        if self.window_columns is not None:
            blocks.append(window_share_features(stack, self.window_columns, self.log,
                                                self.log_floor))
        if self.ion_totals:
            blocks.append(ion_totals(stack, self.log, self.log_floor))
        return np.hstack(blocks)


@dataclass(frozen=True)
class Augment:
    """``augment_copies``: ``copies`` per training row, each with its end trimmed by a share
    drawn uniformly from ``[0, trim_fraction)`` of the run's extent and moved by a whole
    number of columns drawn uniformly from ``[-max_shift, max_shift]``
    (:func:`augment_images`); the draws come from ``seed``."""

    copies: int
    trim_fraction: float
    max_shift: int
    seed: int

    def draws(self, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Trim shares and shifts, ``(copies, n_rows)`` each (copy-major)."""
        rng = np.random.default_rng(self.seed)
        trim = rng.uniform(0.0, float(self.trim_fraction), (self.copies, n_rows))
        shift = rng.integers(-int(self.max_shift), int(self.max_shift) + 1,
                             (self.copies, n_rows))
        return trim, shift


def augment_images(images: np.ndarray, trim: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Copies of render images ``(B, n_mass, n_x)`` (rendered values; 0 = empty): image
    ``i``'s end trimmed, i.e. its columns from ``e - floor(trim[i] * e)`` on emptied, where
    ``e`` = 1 + its last column holding any value > 0 (its extent), then moved by
    ``shift[i]`` columns along x (positive: to later columns), empty columns filling the gap
    and columns pushed past an edge dropped."""
    out = np.zeros_like(images)
    n_x = images.shape[2]
    filled = (images > 0).any(axis=1)
    extent = np.where(filled.any(axis=1), n_x - np.argmax(filled[:, ::-1], axis=1), 0)
    keep = extent - np.floor(np.asarray(trim) * extent).astype(int)
    for i, (k, s) in enumerate(zip(keep, np.asarray(shift, dtype=int))):
        lo, hi = max(0, s), min(n_x, s + k)
        if hi > lo:
            out[i, :, lo:hi] = images[i, :, lo - s:hi - s]
    return out


def augmented_copies(stacks: Sequence[PathLike], stack_ids: Sequence[PathLike],
                     sample_ids: Sequence[str], render: RenderFeatures, augment: Augment,
                     chunk: int = 128) -> np.ndarray:
    """``render``'s columns of ``augment.copies`` augmented copies of the images of
    ``sample_ids``: ``(copies, len(sample_ids), columns)``."""
    opened, which, row = stack_locations(list(map(str, stacks)), list(map(str, stack_ids)),
                                         sample_ids)
    trim, shift = augment.draws(len(sample_ids))
    blocks = []
    for start in range(0, len(sample_ids), chunk):
        part = slice(start, start + chunk)
        images = np.stack([np.asarray(opened[k][i, 0]) for k, i in zip(which[part], row[part])])
        blocks.append(np.stack([render(augment_images(images, trim[c, part], shift[c, part])
                                       [:, None]) for c in range(augment.copies)]))
    return np.concatenate(blocks, axis=1)


def build_features(sheet: pd.DataFrame, stacks: Sequence[PathLike], stack_ids: Sequence[PathLike],
                   render: RenderFeatures, metadata_columns: Sequence[str] = (),
                   levels: Mapping[str, Sequence[str]] | None = None,
                   augment: Augment | None = None) -> Features:
    """Render features (:class:`RenderFeatures`; the time-bin cells are the benchmark
    baseline's) then metadata, sheet row order; no stacks (``image_features: false``) =
    metadata only. ``levels``: see :func:`metadata_features`. ``augment``: the
    :attr:`Features.copies` of the labelled rows (every row when the sheet has no
    ``labelled`` column), their metadata copied from their source rows."""
    meta = metadata_features(sheet, metadata_columns, levels)
    if not stacks:
        return meta
    ids = list(sheet["sample_id"])
    image = load_stack_features(list(map(str, stacks)), list(map(str, stack_ids)),
                                render.time_bins, ids, render).astype(np.float64)
    names = render.names(*np.load(str(stacks[0]), mmap_mode="r").shape[2:])
    offset = len(names)
    copies = None
    rows = (np.flatnonzero(sheet["labelled"].to_numpy(dtype=bool))
            if "labelled" in sheet.columns else np.arange(len(sheet)))
    if augment is not None and augment.copies and len(rows):
        block = augmented_copies(stacks, stack_ids, [ids[r] for r in rows], render, augment)
        block = block.reshape(-1, block.shape[2]).astype(np.float64)
        source = np.tile(rows, augment.copies)
        copies = Copies(np.hstack([block[:, :offset], meta.values[source]]), source,
                        block[:, offset:] if render.ion_totals else None)
    return Features(np.hstack([image[:, :offset], meta.values]), names + meta.names,
                    [offset + k for k in meta.categorical], n_image=offset, levels=meta.levels,
                    ion_totals=image[:, offset:] if render.ion_totals else None, copies=copies)


def member_features(member: TabularSettings, sheet: pd.DataFrame, renders: Renders,
                    levels: Mapping[str, Sequence[str]] | None = None,
                    augment: bool = False) -> Features:
    """A tabular member's features over the rows of ``sheet``: :func:`build_features` with
    the member's render features and metadata columns (``levels``: see
    :func:`metadata_features`); ``augment``: with its ``augment_copies`` (for fitting)."""
    render = RenderFeatures(
        int(member.time_bins), int(member.peak_bands) if member.peak_features else None,
        member.window_columns if member.window_share_features else None,
        bool(member.key_ion_ratios), member.render_log, member.render_log_floor)
    copies = Augment(int(member.augment_copies), float(member.augment_trim_fraction),
                     int(member.augment_max_shift),
                     derive_seed(int(member.seed), "augment_copies")) if augment else None
    return build_features(sheet, renders.stacks, renders.stack_ids, render,
                          member.metadata_columns, levels, copies)


# --- key ions -------------------------------------------------------------------------------

def key_ion_names(labels: Sequence[str], k: int) -> list[str]:
    """Per label: ``key_{label}_share{r}`` for its key ions r = 1..k (best first), then
    ``key_{label}_ratio{r}_{q}`` for each pair r < q, in the column order of
    :func:`key_ion_features` (characters of a label other than letters, digits and _ as
    _)."""
    names = []
    for label in labels:
        tag = re.sub(r"[^A-Za-z0-9_]", "_", str(label))
        names += [f"key_{tag}_share{r}" for r in range(1, k + 1)]
        names += [f"key_{tag}_ratio{r}_{q}" for r, q in combinations(range(1, k + 1), 2)]
    return names


def select_key_ions(totals: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Each label's key ions, ``(n_labels, k)`` m/z rows, best first: per label (a column
    of 0/1 ``y``, or a class of one-hot ``y``) the ``k`` rows whose share of the run's
    total intensity (``totals``: :func:`ion_totals` of the rows ``y`` describes, i.e. the
    training rows only) best separates the label's positives from its negatives, by the
    largest ``|AUC - 1/2|`` (the Mann-Whitney AUC of the share, average ranks for ties;
    either direction), ties to the lower row. A label with one class in ``y`` takes rows
    ``0 .. k-1``."""
    from scipy.stats import rankdata

    total = totals.sum(axis=1, keepdims=True)
    share = np.divide(totals, total, out=np.zeros_like(totals, dtype=np.float64),
                      where=total > 0)
    ranks = rankdata(share, axis=0)
    out = np.empty((y.shape[1], int(k)), dtype=int)
    for j in range(y.shape[1]):
        positive = np.asarray(y[:, j]) > 0.5
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        score = np.zeros(share.shape[1])
        if n_pos and n_neg:
            auc = (ranks[positive].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
            score = np.abs(auc - 0.5)
        out[j] = np.argsort(-score, kind="stable")[:k]
    return out


def key_ion_features(totals: np.ndarray, ions: np.ndarray) -> np.ndarray:
    """Per label (a row of ``ions``, :func:`select_key_ions`): each key ion's log10 share of
    the run's total intensity, then log10(I_r / I_q) for each pair r < q of its key ions
    (I = the ion's :func:`ion_totals`); NaN where an ion (or the run) holds nothing.
    ``(rows, n_labels * (k + k (k - 1) / 2))``, in the order of :func:`key_ion_names`."""
    level = np.full(totals.shape, np.nan)
    np.log10(totals, out=level, where=totals > 0)
    total = totals.sum(axis=1, keepdims=True)
    log_total = np.full(total.shape, np.nan)
    np.log10(total, out=log_total, where=total > 0)
    first, second = np.triu_indices(ions.shape[1], 1)
    blocks = []
    for chosen in ions:
        blocks += [level[:, chosen] - log_total,
                   level[:, chosen[first]] - level[:, chosen[second]]]
    return np.hstack(blocks)


def with_key_ions(values: np.ndarray, totals: np.ndarray | None, rows: np.ndarray,
                  ions: np.ndarray | None) -> np.ndarray:
    """``values[rows]``, followed by their :func:`key_ion_features` when ``ions`` is given."""
    x = values[rows]
    return x if ions is None else np.hstack([x, key_ion_features(totals[rows], ions)])


def feature_names(features: Features, labels: Sequence[str], key_ions: int = 0) -> list[str]:
    """The names of a member's boosters' features: ``features.names`` then, with
    ``key_ions``, the :func:`key_ion_names`."""
    return features.names + (key_ion_names(labels, key_ions) if key_ions else [])


# --- fitting -----------------------------------------------------------------------------

def validation_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit and validation row indices of targets ``y`` (0/1 or class indices), both sorted:
    per distinct value a seeded random share ``fraction`` (rounded) is validation, and every
    value keeps at least one fit row."""
    rng = np.random.default_rng(seed)
    fit, valid = [], []
    for value in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == value))
        k = min(int(round(fraction * len(rows))), len(rows) - 1)
        valid.append(rows[:k])
        fit.append(rows[k:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(valid))


def split_with_copies(y: np.ndarray, source: np.ndarray, fraction: float, seed: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Fit and validation indices into the rows of ``y`` followed by copies of them (copy
    ``i``, at index ``len(y) + i``, is a copy of row ``source[i]``): the rows split as by
    :func:`validation_split` (the same rows as without copies), each copy of a fit row
    joining the fit rows and the copies of validation rows left out, so the copies of one
    run never stand on both sides and validation sees rows as they are."""
    fit, valid = validation_split(y, fraction, seed)
    return np.concatenate([fit, len(y) + np.flatnonzero(np.isin(source, fit))]), valid


def fit_booster(x: np.ndarray, y: np.ndarray, settings: GBMSettings,
                feature_names: Sequence[str] | None = None,
                categorical: Sequence[int] = (), num_class: int | None = None,
                copies: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """One binary LightGBM booster on ``x`` (rows) and 0/1 targets ``y`` (``num_class``
    given: one softmax booster, ``y`` = class indices). With ``early_stopping_rounds`` the
    rows are split by :func:`validation_split` and boosting stops on the validation log
    loss; the booster then predicts (and explains) with its best iteration. With
    ``prior_fallback`` too, None (predict the prior) when that booster's validation log loss
    is not below the one of the fit rows' prevalence (:func:`beats_prior`). ``copies``:
    ``(rows, source)``, augmented copies of the rows ``source`` of ``x`` with their targets,
    fitted beside the rows they copy (:func:`split_with_copies`)."""
    import lightgbm as lgb

    names = list(feature_names) if feature_names is not None else "auto"
    rounds = settings.early_stopping_rounds
    if copies is None:
        fit, valid = (None, None) if rounds is None else validation_split(
            y, settings.validation_fraction, settings.seed)
    else:
        fit, valid = (None, None) if rounds is None else split_with_copies(
            y, copies[1], settings.validation_fraction, settings.seed)
        x, y = np.vstack([x, copies[0]]), np.concatenate([y, y[copies[1]]])

    def dataset(rows: np.ndarray | slice, reference: Any = None) -> Any:
        return lgb.Dataset(x[rows], label=y[rows], feature_name=names,
                           categorical_feature=list(categorical) or "auto",
                           params={"verbosity": -1, "feature_pre_filter": False},
                           free_raw_data=True, reference=reference)

    if valid is None or not len(valid):
        if valid is not None:
            log.warning("early stopping: %d training rows leave no validation row; %d rounds",
                        len(y), settings.n_estimators)
        return lgb.train(settings.params(num_class), dataset(slice(None)),
                         num_boost_round=int(settings.n_estimators))
    fit_data = dataset(fit)
    metric = "binary_logloss" if num_class is None else "multi_logloss"
    booster = lgb.train({**settings.params(num_class), "metric": metric}, fit_data,
                        num_boost_round=int(settings.n_estimators),
                        valid_sets=[dataset(valid, reference=fit_data)],
                        callbacks=[lgb.early_stopping(int(rounds), verbose=False)])
    log.info("early stopping: best iteration %d of at most %d (%d fit, %d validation rows)",
             booster.best_iteration, settings.n_estimators, len(fit), len(valid))
    if settings.prior_fallback and not beats_prior(booster, x[valid], y[valid], y[fit],
                                                   num_class):
        log.info("prior fallback: the booster's validation log loss is not below the prior's")
        return None
    return booster


def beats_prior(booster: Any, x_valid: np.ndarray, y_valid: np.ndarray, y_fit: np.ndarray,
                num_class: int | None = None) -> bool:
    """Whether ``booster`` has a lower log loss on the validation rows than the prevalence
    of the fit rows' targets ``y_fit`` (0/1, or class indices with ``num_class``)."""
    pred = np.asarray(booster.predict(x_valid), dtype=np.float64)
    if num_class is None:
        y, share = np.asarray(y_valid, dtype=np.float64)[:, None], float(np.mean(y_fit))
        loss = [mean_log_loss(y, p) for p in (pred[:, None], np.full_like(y, share))]
    else:
        onehot = np.eye(num_class)[np.asarray(y_valid, dtype=int)]
        prior = np.bincount(y_fit, minlength=num_class) / len(y_fit)
        loss = [multiclass_log_loss(onehot, p) for p in (pred, np.tile(prior, (len(y_valid), 1)))]
    return bool(loss[0] < loss[1])


def contributions(booster: Any, x: np.ndarray) -> np.ndarray:
    """TreeSHAP values ``(n_rows, n_features + 1)``; the last column is the expected value,
    and each row sums to the booster's raw score (log-odds)."""
    return np.asarray(booster.predict(x, pred_contrib=True), dtype=np.float64)


@dataclass
class ShapAccumulator:
    """Running sums of |SHAP| per label and feature over out-of-fold rows."""

    n_labels: int
    n_features: int
    abs_sum: np.ndarray = field(init=False)
    n_rows: int = 0

    def __post_init__(self) -> None:
        self.abs_sum = np.zeros((self.n_labels, self.n_features))

    def mean_abs(self) -> np.ndarray:
        """``(n_labels, n_features)`` mean |SHAP| (zeros before any row)."""
        return self.abs_sum / max(self.n_rows, 1)


@TABULAR_MEMBERS.register(TABULAR_KIND)
class GBMMember:
    """Per-label LightGBM (multiclass: one softmax booster over the classes, one-hot ``y``)
    as a :class:`~.members.Member` over the rows of ``features``. With ``shap`` given, |SHAP|
    values are accumulated at predict time for the predicted rows where ``explain_rows``
    (bool per sheet row) is set, i.e. the held-out rows. A label (multiclass: a training
    fold) with one class in the training rows gets its prevalence (and zero contributions).
    """

    def __init__(self, features: Features, settings: GBMSettings,
                 explain_rows: np.ndarray | None = None, shap: ShapAccumulator | None = None,
                 task: str = "multilabel", key_ions: int = 0,
                 labels: Sequence[str] = ()) -> None:
        self.features, self.settings, self.task = features, settings, task
        self.explain_rows = (np.zeros(len(features.values), dtype=bool)
                             if explain_rows is None else explain_rows)
        self.shap = shap
        self.key_ions = int(key_ions)  # > 0: key ions per label, chosen in each fit
        self.names = feature_names(features, labels, self.key_ions)

    def fit(self, train: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """The prevalence and the boosters: ``{label index: booster}`` (multiclass: the
        softmax booster under key -1, none when the training rows hold one class); with
        ``n_seeds`` > 1 the boosters of the further seeds under ``more_seeds`` (one such
        dict per seed); with key ions, each label's (``key_ions``, chosen on these training
        rows alone)."""
        feats = self.features
        ions = (select_key_ions(feats.ion_totals[train], y, self.key_ions)
                if self.key_ions else None)
        x = with_key_ions(feats.values, feats.ion_totals, train, ions)
        copies = self._copies(train, ions)
        seeds = [replace(self.settings, seed=int(self.settings.seed) + k)
                 for k in range(int(self.settings.n_seeds))]
        fits = [self._boosters(x, y, settings, copies) for settings in seeds]
        state = {"prior": y.mean(axis=0), "boosters": fits[0]}
        if len(fits) > 1:
            state["more_seeds"] = fits[1:]
        if ions is not None:
            state["key_ions"] = ions
        return state

    def _boosters(self, x: np.ndarray, y: np.ndarray, settings: GBMSettings,
                  copies: tuple[np.ndarray, np.ndarray] | None) -> dict[int, Any]:
        """One seed's boosters on the training rows ``x`` (see :meth:`fit`)."""
        boosters: dict[int, Any] = {}
        if self.task == "multiclass":
            classes = np.argmax(y, axis=1)
            if np.unique(classes).size >= 2:
                boosters[-1] = fit_booster(x, classes, settings, self.names,
                                           self.features.categorical, num_class=y.shape[1],
                                           copies=copies)
        else:
            for j in range(y.shape[1]):
                if np.unique(y[:, j]).size < 2:
                    log.info("label %d has one class in %d training rows: prevalence", j,
                             len(x))
                    continue
                boosters[j] = fit_booster(x, y[:, j], settings, self.names,
                                          self.features.categorical, copies=copies)
        # a booster no better than the prior on its validation rows: the prevalence predicts
        return {j: b for j, b in boosters.items() if b is not None}

    def _copies(self, train: np.ndarray, ions: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray] | None:
        """The augmented copies of the ``train`` rows as :func:`fit_booster` takes them: their
        feature rows and, for each, its source's position in ``train``."""
        copies = self.features.copies
        if copies is None:
            return None
        order = np.argsort(train)
        at = np.minimum(np.searchsorted(train, copies.source, sorter=order), len(train) - 1)
        mine = train[order[at]] == copies.source
        return (with_key_ions(copies.values, copies.ion_totals, mine, ions), order[at[mine]])

    def predict(self, state: dict[str, Any], rows: np.ndarray) -> np.ndarray:
        """Probabilities of ``rows``; with several seeds' boosters (``more_seeds``), the
        probabilities of the mean of their logits (multiclass: of their log-probabilities)."""
        x = with_key_ions(self.features.values, self.features.ion_totals, rows,
                          state.get("key_ions"))
        fits = [state["boosters"], *state.get("more_seeds", [])]
        explain = self.explain_rows[rows]
        probs = [self._predict_one(boosters, state["prior"], x, explain, 1.0 / len(fits))
                 for boosters in fits]
        if self.shap is not None:
            self.shap.n_rows += int(explain.sum())
        if len(probs) == 1:
            return probs[0]
        clipped = clip_class_probs if self.task == "multiclass" else clip_probs
        scores = [scores_of_probs(clipped(p, SEED_MEAN_CLIP), self.task) for p in probs]
        return to_probs(combine_logits(scores, SEED_MEAN_CLIP, task=self.task), self.task)

    def _predict_one(self, boosters: Mapping[int, Any], prior: np.ndarray, x: np.ndarray,
                     explain: np.ndarray, shap_weight: float) -> np.ndarray:
        """One seed's probabilities of the rows ``x``; their |SHAP| (the ``explain`` rows)
        added to the accumulator times ``shap_weight``."""
        shap = self.shap
        out = np.tile(prior, (len(x), 1))
        for j, booster in boosters.items():
            if j == -1:
                out = np.asarray(booster.predict(x), dtype=np.float64)
            else:
                out[:, j] = booster.predict(x)
            if shap is not None and explain.any():
                contrib = np.abs(contributions(booster, x[explain])) * shap_weight
                if j >= 0:
                    shap.abs_sum[j] += contrib[:, :-1].sum(0)
                    continue
                width = x.shape[1] + 1
                for k in range(out.shape[1]):
                    shap.abs_sum[k] += contrib[:, k * width:(k + 1) * width - 1].sum(0)
        return out


@dataclass
class TabularResult:
    """What a tabular member writes."""

    oof: pd.DataFrame
    test: pd.DataFrame
    importance: pd.DataFrame
    fitted: dict[int, Any] = field(default_factory=dict)  # each fold's fitted state


def importance_table(mean_abs: np.ndarray, names: Sequence[str], labels: Sequence[str],
                     kinds: Sequence[str]) -> pd.DataFrame:
    """``feature, kind, mean_abs_shap, <label>...``: mean |SHAP| per feature, averaged over
    labels and per label, most important first (ties by name); ``kinds``: image or
    metadata, per feature."""
    table = pd.DataFrame(mean_abs.T, columns=list(labels))
    table.insert(0, "mean_abs_shap", mean_abs.mean(axis=0))
    table.insert(0, "kind", list(kinds))
    table.insert(0, "feature", list(names))
    return (table.sort_values(["mean_abs_shap", "feature"], ascending=[False, True],
                              kind="mergesort").reset_index(drop=True))


def fit_tabular(features: Features, sample_ids: Sequence[str], label_table: pd.DataFrame,
                folds: pd.DataFrame, test_ids: Sequence[str], labels: Sequence[str],
                settings: GBMSettings, clip: float, task: str = "multilabel",
                fold_combine: str = "prob_mean", key_ions: int = 0) -> TabularResult:
    """Cross-fit the member on the folds; OOF/test logit tables (test: the folds combined by
    ``fold_combine``) and the SHAP importance. ``key_ions`` > 0: that many key ions per
    label chosen in each training fold (:func:`select_key_ions`), their features after the
    metadata (kind image in the importance table)."""
    held = set(folds.loc[folds["fold"] >= 0, "sample_id"].astype(str))
    explain_rows = np.array([s in held for s in sample_ids])
    names = feature_names(features, labels, key_ions)
    shap = ShapAccumulator(len(labels), len(names))
    fitted: dict[int, Any] = {}
    member = TABULAR_MEMBERS.get(TABULAR_KIND)(features, settings, explain_rows, shap, task,
                                               key_ions, labels)
    oof, test = cross_fit(member, sample_ids, label_table, folds, test_ids, labels, clip, task,
                          fitted, fold_combine)
    kinds = (["image"] * features.n_image + ["metadata"] * (len(features.names)
                                                            - features.n_image)
             + ["image"] * (len(names) - len(features.names)))
    return TabularResult(oof, test, importance_table(shap.mean_abs(), names, labels, kinds),
                         fitted)


# --- summary plot --------------------------------------------------------------------------

def shap_summary_plot(importance: pd.DataFrame, labels: Sequence[str], title: str = "",
                      top: int = TOP_FEATURES) -> Any:
    """Top features by label-averaged mean |SHAP|: bars (left) and per-label heatmap (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    head = importance.head(top).iloc[::-1]
    n = max(len(head), 1)
    fig, (bars, heat) = plt.subplots(1, 2, figsize=(11, 1.2 + 0.3 * n), sharey=True,
                                     gridspec_kw={"width_ratios": [1, max(1, len(labels)) * 0.35]})
    colours = ["tab:orange" if k == "metadata" else "tab:blue" for k in head["kind"]]
    rows = np.arange(len(head))
    bars.barh(rows, head["mean_abs_shap"], color=colours)
    bars.set_yticks(rows, head["feature"], fontsize=8)
    bars.set_xlabel("mean |SHAP| (log-odds), label average")
    bars.set_ylim(-0.5, n - 0.5)
    matrix = head[list(labels)].to_numpy(dtype=float) if len(head) else np.zeros((1, len(labels)))
    im = heat.imshow(matrix, aspect="auto", cmap="viridis", origin="lower",
                     extent=(-0.5, len(labels) - 0.5, -0.5, n - 0.5))
    heat.set_xticks(range(len(labels)), list(labels), rotation=60, ha="right", fontsize=8)
    heat.set_title("per label", fontsize=9)
    fig.colorbar(im, ax=heat, label="mean |SHAP|")
    fig.suptitle(title or f"top {min(top, len(importance))} features (blue = image "
                 "m{mass}_t{bin}, orange = metadata)", fontsize=10)
    fig.tight_layout()
    return fig


# --- file-level entry point (called by workflow/scripts) -----------------------------------

def run_tabular(*, name: str, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                settings: Mapping[str, Any], data: Mapping[str, Any], labels: Sequence[str],
                clip: float, num_threads: int, task: str,
                fold_combine: str = "prob_mean") -> TabularResult:
    """Fit tabular member ``name`` (``settings``: its resolved settings as a dict, see
    :func:`resolve_tabular`) on the folds of ``inputs["folds"]`` (renders:
    ``inputs["stacks"]``/``["stack_ids"]``) and write ``outputs`` ``oof``, ``test`` (member
    tables), ``importance`` (CSV), ``summary`` (PNG) and, when named, ``fitted`` (each
    fold's boosters, :mod:`.fitted`)."""
    from ..data.folds import read_folds
    from ..data.sheet import sample_sheet
    from ..io import save_figure, write_csv

    member = settings_from(TabularSettings, settings, f"tabular/{name}")
    renders = Renders.from_inputs(inputs)
    sheet = sample_sheet(data)
    features = member_features(member, sheet, renders, augment=True)
    gbm = GBMSettings.from_settings(member, num_threads)
    result = fit_tabular(features, list(sheet["sample_id"]), sheet.attrs["label_table"],
                         read_folds(inputs["folds"]), unlabelled_ids(sheet), labels, gbm, clip,
                         task, fold_combine,
                         int(member.key_ions) if member.key_ion_ratios else 0)
    log.info("%s: %d features, %d OOF rows, %d test rows", name, len(features.names),
             len(result.oof), len(result.test))
    write_member_tables(outputs, result.oof, result.test)
    if "fitted" in outputs:
        write_fitted(outputs["fitted"], fitted_record(
            member=name, kind="tabular",
            member_class=TABULAR_MEMBERS.get(TABULAR_KIND).__name__, settings=settings,
            seed=member.seed, labels=labels, task=task, clip=clip, states=result.fitted,
            levels=features.levels, fold_combine=fold_combine))
    write_csv(outputs["importance"], result.importance)
    fig = shap_summary_plot(result.importance, labels, title=f"{name}: mean |SHAP| on "
                            "out-of-fold rows, top features")
    save_figure(outputs["summary"], fig, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return result
