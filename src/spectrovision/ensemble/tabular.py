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

Feature contributions: LightGBM's TreeSHAP (``pred_contrib=True``) on the out-of-fold rows
of each fold; the mean absolute contribution per feature and label is written as a table
and drawn as a summary plot. Training is deterministic (fixed seed, ``deterministic=True``,
``force_row_wise=True``, a fixed thread count): same inputs, same outputs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from .members import (Renders, coarse_time_features, column_band_edges,
                      cross_fit, load_stack_features, unlabelled_ids)
from .fitted import fitted_record, write_fitted
from .tables import write_member_tables
from ..config.checks import chosen_representation
from ..config.schema import derive_seed
from ..config.typed import settings_from
from ..errors import ConfigError, InputError
from ..metrics import mean_log_loss, multiclass_log_loss
from ..registry import Registry

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]
TOP_FEATURES = 20  # features drawn in the summary plot
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


def resolve_tabular(cfg: Mapping[str, Any], name: str,
                    sheet_columns: Sequence[str] | None = None) -> TabularSettings:
    """A tabular member's settings from the validated ``cfg`` with the representation (null =
    first by name) and the seed (null = derived from the global seed and the name) filled
    in; metadata columns are checked against ``sheet_columns`` when given."""
    if name not in cfg["tabular"]:
        raise ConfigError(f"tabular member '{name}' is not defined under 'tabular:'")
    settings = dict(cfg["tabular"][name])
    if not settings["image_features"]:
        settings["representation"] = None  # metadata only: no render is read
        if not settings["metadata_columns"]:
            raise ConfigError(f"config key 'tabular/{name}/image_features': false needs "
                              "metadata_columns. Fix: list metadata columns, or set it true.")
        if settings["peak_features"]:
            raise ConfigError(f"config key 'tabular/{name}/peak_features': true needs image "
                              "features, but image_features is false. Fix: set one of them "
                              "the other way.")
    else:
        reps = list(cfg["representations"])
        if settings["representation"] is None and not reps:
            raise ConfigError(f"config key 'tabular/{name}/representation': no representation "
                              "is defined. Fix: define one under 'representations:'.")
        settings["representation"] = chosen_representation(
            f"tabular/{name}/representation", settings["representation"], reps)
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
class Features:
    """Feature matrix (rows = samples in sheet order), names, categorical columns; the
    first ``n_image`` columns are render features, the rest metadata."""

    values: np.ndarray
    names: list[str]
    categorical: list[int] = field(default_factory=list)
    n_image: int = 0
    levels: dict[str, list[str]] = field(default_factory=dict)  # codes of text columns


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


def build_features(sheet: pd.DataFrame, stacks: Sequence[PathLike], stack_ids: Sequence[PathLike],
                   time_bins: int, metadata_columns: Sequence[str] = (),
                   peak_bands: int | None = None,
                   levels: Mapping[str, Sequence[str]] | None = None) -> Features:
    """Render features (reused from the benchmark baseline; ``peak_bands`` given: followed
    by the :func:`peak_features` with that many bands) then metadata, sheet row order; no
    stacks (``image_features: false``) = metadata only. ``levels``: see
    :func:`metadata_features`."""
    meta = metadata_features(sheet, metadata_columns, levels)
    if not stacks:
        return meta
    featurize = None if peak_bands is None else (lambda stack: np.hstack([
        coarse_time_features(stack, time_bins), peak_features(stack, peak_bands)]))
    image = load_stack_features(list(map(str, stacks)), list(map(str, stack_ids)), time_bins,
                                list(sheet["sample_id"]), featurize).astype(np.float64)
    if peak_bands is None:
        names = image_feature_names(image.shape[1] // time_bins, time_bins)
    else:
        n_mass = image.shape[1] // (time_bins + len(PEAK_KINDS) + peak_bands)
        names = (image_feature_names(n_mass, time_bins)
                 + peak_feature_names(n_mass, peak_bands))
    offset = image.shape[1]
    return Features(np.hstack([image, meta.values]), names + meta.names,
                    [offset + k for k in meta.categorical], n_image=offset, levels=meta.levels)


def member_features(member: TabularSettings, sheet: pd.DataFrame, renders: Renders,
                    levels: Mapping[str, Sequence[str]] | None = None) -> Features:
    """A tabular member's features over the rows of ``sheet``: :func:`build_features` with
    the member's time bins, metadata columns and peak bands (``levels``: see
    :func:`metadata_features`)."""
    return build_features(sheet, renders.stacks, renders.stack_ids, int(member.time_bins),
                          member.metadata_columns,
                          int(member.peak_bands) if member.peak_features else None, levels)


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


def fit_booster(x: np.ndarray, y: np.ndarray, settings: GBMSettings,
                feature_names: Sequence[str] | None = None,
                categorical: Sequence[int] = (), num_class: int | None = None) -> Any:
    """One binary LightGBM booster on ``x`` (rows) and 0/1 targets ``y`` (``num_class``
    given: one softmax booster, ``y`` = class indices). With ``early_stopping_rounds`` the
    rows are split by :func:`validation_split` and boosting stops on the validation log
    loss; the booster then predicts (and explains) with its best iteration. With
    ``prior_fallback`` too, None (predict the prior) when that booster's validation log loss
    is not below the one of the fit rows' prevalence (:func:`beats_prior`)."""
    import lightgbm as lgb

    names = list(feature_names) if feature_names is not None else "auto"

    def dataset(rows: np.ndarray | slice, reference: Any = None) -> Any:
        return lgb.Dataset(x[rows], label=y[rows], feature_name=names,
                           categorical_feature=list(categorical) or "auto",
                           params={"verbosity": -1, "feature_pre_filter": False},
                           free_raw_data=True, reference=reference)

    rounds = settings.early_stopping_rounds
    fit, valid = (None, None) if rounds is None else validation_split(
        y, settings.validation_fraction, settings.seed)
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
                 task: str = "multilabel") -> None:
        self.features, self.settings, self.task = features, settings, task
        self.explain_rows = (np.zeros(len(features.values), dtype=bool)
                             if explain_rows is None else explain_rows)
        self.shap = shap

    def fit(self, train: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """The prevalence and the boosters: ``{label index: booster}`` (multiclass: the
        softmax booster under key -1, none when the training rows hold one class)."""
        x = self.features.values[train]
        boosters: dict[int, Any] = {}
        if self.task == "multiclass":
            classes = np.argmax(y, axis=1)
            if np.unique(classes).size >= 2:
                boosters[-1] = fit_booster(x, classes, self.settings, self.features.names,
                                           self.features.categorical, num_class=y.shape[1])
        else:
            for j in range(y.shape[1]):
                if np.unique(y[:, j]).size < 2:
                    log.info("label %d has one class in %d training rows: prevalence", j,
                             len(train))
                    continue
                boosters[j] = fit_booster(x, y[:, j], self.settings, self.features.names,
                                          self.features.categorical)
        # a booster no better than the prior on its validation rows: the prevalence predicts
        return {"prior": y.mean(axis=0),
                "boosters": {j: b for j, b in boosters.items() if b is not None}}

    def predict(self, state: dict[str, Any], rows: np.ndarray) -> np.ndarray:
        x_all, shap = self.features.values, self.shap
        out = np.tile(state["prior"], (len(rows), 1))
        explain = rows[self.explain_rows[rows]]
        for j, booster in state["boosters"].items():
            if j == -1:
                out = np.asarray(booster.predict(x_all[rows]), dtype=np.float64)
            else:
                out[:, j] = booster.predict(x_all[rows])
            if shap is not None and len(explain):
                contrib = contributions(booster, x_all[explain])
                if j >= 0:
                    shap.abs_sum[j] += np.abs(contrib[:, :-1]).sum(0)
                    continue
                width = len(self.features.names) + 1
                for k in range(out.shape[1]):
                    shap.abs_sum[k] += np.abs(contrib[:, k * width:(k + 1) * width - 1]).sum(0)
        if shap is not None:
            shap.n_rows += len(explain)
        return out


@dataclass
class TabularResult:
    """What a tabular member writes."""

    oof: pd.DataFrame
    test: pd.DataFrame
    importance: pd.DataFrame
    fitted: dict[int, Any] = field(default_factory=dict)  # each fold's fitted state


def importance_table(mean_abs: np.ndarray, names: Sequence[str], labels: Sequence[str],
                     n_image: int) -> pd.DataFrame:
    """``feature, kind, mean_abs_shap, <label>...``: mean |SHAP| per feature, averaged over
    labels and per label, most important first (ties by name)."""
    table = pd.DataFrame(mean_abs.T, columns=list(labels))
    table.insert(0, "mean_abs_shap", mean_abs.mean(axis=0))
    table.insert(0, "kind", ["image"] * n_image + ["metadata"] * (len(names) - n_image))
    table.insert(0, "feature", list(names))
    return (table.sort_values(["mean_abs_shap", "feature"], ascending=[False, True],
                              kind="mergesort").reset_index(drop=True))


def fit_tabular(features: Features, sample_ids: Sequence[str], label_table: pd.DataFrame,
                folds: pd.DataFrame, test_ids: Sequence[str], labels: Sequence[str],
                settings: GBMSettings, clip: float, task: str = "multilabel",
                fold_combine: str = "prob_mean") -> TabularResult:
    """Cross-fit the member on the folds; OOF/test logit tables (test: the folds combined by
    ``fold_combine``) and the SHAP importance."""
    held = set(folds.loc[folds["fold"] >= 0, "sample_id"].astype(str))
    explain_rows = np.array([s in held for s in sample_ids])
    shap = ShapAccumulator(len(labels), len(features.names))
    fitted: dict[int, Any] = {}
    member = TABULAR_MEMBERS.get(TABULAR_KIND)(features, settings, explain_rows, shap, task)
    oof, test = cross_fit(member, sample_ids, label_table, folds, test_ids, labels, clip, task,
                          fitted, fold_combine)
    return TabularResult(oof, test, importance_table(shap.mean_abs(), features.names, labels,
                                                     features.n_image), fitted)


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
    features = member_features(member, sheet, renders)
    gbm = GBMSettings.from_settings(member, num_threads)
    result = fit_tabular(features, list(sheet["sample_id"]), sheet.attrs["label_table"],
                         read_folds(inputs["folds"]), unlabelled_ids(sheet), labels, gbm, clip,
                         task, fold_combine)
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
