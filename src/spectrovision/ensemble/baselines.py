"""Baselines scored beside the CNNs on the same folds, written as ensemble members.

Each baseline is one class registered by name (:func:`register_baseline`) that says what
it reads and fits per fold (the member interface of :mod:`.members`):

- ``prior``: per-label prevalence of the training folds.
- ``conditional_prior``: prevalence per value of a metadata column (a layout's
  ``group_columns``: ``derivatized`` for Mars-2, ``instrument_type`` for Mars-1), smoothed
  toward the global prior.
- ``benchmark_lr``: the public benchmark recipe: the rendered intensity image max-pooled
  into coarse time bins per mass, then per-label L1 logistic regression (liblinear).
- ``logistic_l2``: the classical yardstick: the same coarse features, standardized, then
  per-label L2 logistic regression (lbfgs) with C chosen by inner cross-validation on the
  training folds.

A new baseline is one subclass of :class:`Baseline` registered in :data:`BASELINES`
(``@register_baseline("name")``) and named in the schema's ``baselines`` enum: ``settings_class`` (the
frozen dataclass of its ``baseline_settings.<name>`` block, or None), ``representation_key``
(the key of that block naming the representation it reads, or None), :meth:`Baseline.prepare`
(build it over the rows of the sheet), :meth:`Baseline.fit` (fit on training rows: a picklable
fitted state) and :meth:`Baseline.predict` (probabilities of rows from a state);
:meth:`Baseline.describe` (optional) says what its fits chose, for the job's log. The states
of every fold are written beside the member tables (``fitted.pkl``), so the member can be
applied to a new data set: :meth:`Baseline.prepare` over the new sheet, then ``predict``.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from .fitted import fitted_record, write_fitted
from .members import Renders, cross_fit, load_stack_features, unlabelled_ids
from .tables import write_member_tables
from ..config.checks import chosen_representation
from ..config.typed import settings_from
from ..data.layouts import group_columns
from ..errors import InputError
from ..registry import Registry
from ..metrics import mean_log_loss

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


# --- the registry --------------------------------------------------------------------------

class Baseline:
    """A baseline member: fitted per fold on the training rows, predicting probabilities.

    Subclasses set ``settings_class`` and ``representation_key`` when they have settings or
    read renders, override :meth:`prepare` when they need the sheet, renders or seed, and
    implement :meth:`fit` and :meth:`predict` (a :class:`~.members.Member`).
    """

    name: ClassVar[str] = ""
    settings_class: ClassVar[type | None] = None
    representation_key: ClassVar[str | None] = None

    @classmethod
    def prepare(cls, sheet: pd.DataFrame, settings: Any, renders: Renders,
                seed: int) -> Baseline:
        """The baseline ready to fit over the rows of ``sheet`` (``settings``: an instance of
        ``settings_class``, or None)."""
        return cls()

    def fit(self, train: np.ndarray, y: np.ndarray) -> Any:
        """Fit on rows ``train`` with labels ``y``: the fitted state (picklable; it must
        not hold the rows' features, which belong to the sheet the baseline was prepared
        over)."""
        raise NotImplementedError

    def predict(self, state: Any, rows: np.ndarray) -> np.ndarray:
        """Probabilities ``(len(rows), n_labels)`` of ``rows`` from a state of :meth:`fit`."""
        raise NotImplementedError

    def fit_predict(self, train: np.ndarray, y: np.ndarray, predict: np.ndarray) -> np.ndarray:
        """Fit on rows ``train`` with labels ``y``; probabilities of rows ``predict``."""
        return self.predict(self.fit(train, y), predict)

    def describe(self, labels: Sequence[str]) -> list[str]:
        """Lines for the log after every fold was fitted: what the fits chose (none here)."""
        return []


#: baseline name (config ``baselines``) -> its class
BASELINES: Registry[type[Baseline]] = Registry("baseline", "baselines")
B = TypeVar("B", bound=type[Baseline])


def register_baseline(name: str) -> Callable[[B], B]:
    """Class decorator: register a :class:`Baseline` subclass under ``name`` in
    :data:`BASELINES` (a name registered twice is a ValueError)."""
    def register(cls: B) -> B:
        BASELINES.register(name, cls)
        cls.name = name
        return cls
    return register


def baseline_class(name: str) -> type[Baseline]:
    """The registered baseline ``name`` (unknown: a ConfigError listing the baselines)."""
    return BASELINES.get(name)


def baseline_settings(name: str, values: Mapping[str, Any]) -> Any:
    """The typed settings of baseline ``name`` from its validated ``baseline_settings`` block
    (None for a baseline without settings)."""
    cls = baseline_class(name)
    if cls.settings_class is None:
        return None
    return settings_from(cls.settings_class, values, f"baseline_settings/{name}")


def baseline_representation(name: str, cfg: Mapping[str, Any]) -> str | None:
    """The representation baseline ``name`` reads (null = the first by name), None when it
    reads none; a representation that does not exist is a ConfigError naming the key."""
    cls = baseline_class(name)
    if cls.representation_key is None:
        return None
    key = cls.representation_key
    return chosen_representation(f"baseline_settings/{name}/{key}",
                                 cfg["baseline_settings"][name][key],
                                 list(cfg["representations"]))


# --- prior and conditional prior ---------------------------------------------------------

@register_baseline("prior")
class Prior(Baseline):
    """Predict every sample with the training prevalence of each label."""

    def fit(self, train: np.ndarray, y: np.ndarray) -> np.ndarray:
        return y.mean(axis=0)

    def predict(self, state: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.tile(state, (len(rows), 1))


@dataclass(frozen=True)
class ConditionalPriorSettings:
    """``baseline_settings.conditional_prior``."""

    column: str | None
    smoothing: float


@register_baseline("conditional_prior")
class ConditionalPrior(Baseline):
    """Prevalence per group, shrunk toward the global prevalence:
    ``(positives_g + smoothing * prior) / (n_g + smoothing)``; unseen groups get the prior."""

    settings_class = ConditionalPriorSettings

    def __init__(self, groups: Sequence[object], smoothing: float) -> None:
        self.codes = pd.Series(list(groups), dtype=object).fillna("<missing>").astype(str).to_numpy()
        self.smoothing = smoothing

    @classmethod
    def prepare(cls, sheet: pd.DataFrame, settings: ConditionalPriorSettings,
                renders: Renders, seed: int) -> Baseline:
        column = group_column(sheet, settings.column)
        if column is None:
            log.warning("no derivatized/instrument_type column: conditional_prior = prior")
            return Prior()
        return cls(sheet[column].tolist(), float(settings.smoothing))

    def fit(self, train: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The prior and the smoothed prevalence of every group seen in ``train``."""
        prior = y.mean(axis=0)
        train_codes = self.codes[train]
        groups = {}
        for value in np.unique(train_codes):
            in_group = train_codes == value
            groups[str(value)] = ((y[in_group].sum(axis=0) + self.smoothing * prior)
                                  / (in_group.sum() + self.smoothing))
        return prior, groups

    def predict(self, state: tuple[np.ndarray, dict[str, np.ndarray]],
                rows: np.ndarray) -> np.ndarray:
        prior, groups = state
        out = np.tile(prior, (len(rows), 1))
        codes = self.codes[rows]
        for value, p in groups.items():
            out[codes == value] = p
        return out


def group_column(sheet: pd.DataFrame, column: str | None) -> str | None:
    """The metadata column the conditional prior groups by: ``column`` if given, else the
    first of the layouts' group columns (derivatized, instrument_type) in the sheet (None
    when there is none)."""
    if column is not None:
        if column not in sheet.columns:
            raise InputError("sample sheet", f"metadata column '{column}' is missing",
                             "set baseline_settings.conditional_prior.column to a column of "
                             "data.metadata_columns", column=column)
        return column
    return next((c for c in group_columns() if c in sheet.columns), None)


# --- benchmark logistic regression -------------------------------------------------------

def l1_penalty() -> dict[str, object]:
    """The L1 penalty argument of LogisticRegression (``l1_ratio=1`` from scikit-learn 1.8,
    where ``penalty`` is deprecated; ``penalty="l1"`` before)."""
    import sklearn

    major, minor = (int(x) for x in re.findall(r"\d+", sklearn.__version__)[:2])
    return {"l1_ratio": 1.0} if (major, minor) >= (1, 8) else {"penalty": "l1"}


@dataclass(frozen=True)
class BenchmarkLRSettings:
    """``baseline_settings.benchmark_lr``."""

    representation: str | None
    time_bins: int
    C: float


@register_baseline("benchmark_lr")
class BenchmarkLR(Baseline):
    """Per-label L1 logistic regression (liblinear) on coarse render features; a label
    constant in the training rows is predicted by its prevalence."""

    settings_class = BenchmarkLRSettings
    representation_key = "representation"

    def __init__(self, features: np.ndarray, c: float, seed: int = 0) -> None:
        self.features, self.c, self.seed = features, c, seed

    @classmethod
    def prepare(cls, sheet: pd.DataFrame, settings: BenchmarkLRSettings, renders: Renders,
                seed: int) -> Baseline:
        features = load_stack_features(renders.stacks, renders.stack_ids,
                                       int(settings.time_bins), list(sheet["sample_id"]))
        return cls(features, float(settings.C), seed)

    def fit(self, train: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict[int, Any]]:
        """The prevalence and one fitted model per label that has both classes."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        models = {}
        for j in range(y.shape[1]):
            if np.unique(y[:, j]).size < 2:
                continue
            model = LogisticRegression(solver="liblinear", C=self.c, random_state=self.seed,
                                       max_iter=1000, **l1_penalty())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=ConvergenceWarning)
                model.fit(self.features[train], y[:, j])
            models[j] = model
        return y.mean(axis=0), models

    def predict(self, state: tuple[np.ndarray, dict[int, Any]], rows: np.ndarray) -> np.ndarray:
        prior, models = state
        out = np.tile(prior, (len(rows), 1))
        for j, model in models.items():
            out[:, j] = model.predict_proba(self.features[rows])[:, 1]
        return out


# --- tuned L2 logistic regression: the classical yardstick ----------------------------------

@dataclass(frozen=True)
class LogisticL2Settings:
    """``baseline_settings.logistic_l2``."""

    representation: str | None
    time_bins: int
    c_grid: Sequence[float]
    inner_folds: int
    standardize: bool
    max_iter: int


@register_baseline("logistic_l2")
class LogisticL2(Baseline):
    """Per-label L2 logistic regression (lbfgs) on coarse render features, standardized with
    the training rows' mean and std. The C of each label is the one of ``c_grid`` with the
    lowest mean log loss over seeded inner stratified folds of the training rows (ties: the
    smaller C; the held-out rows take no part), then the model is refitted on every training
    row. A label constant in the training rows is predicted by its prevalence.

    ``chosen`` holds the C per label of every fit, in fit order (NaN: a constant label).
    """

    settings_class = LogisticL2Settings
    representation_key = "representation"

    def __init__(self, features: np.ndarray, c_grid: Sequence[float], inner_folds: int = 3,
                 standardize: bool = True, max_iter: int = 1000, seed: int = 0) -> None:
        if not c_grid:
            raise ValueError("c_grid must name at least one C")
        self.features = features
        self.c_grid = tuple(sorted(float(c) for c in c_grid))
        self.inner_folds, self.standardize = int(inner_folds), bool(standardize)
        self.max_iter, self.seed = int(max_iter), seed
        self.chosen: list[np.ndarray] = []
        self.unconverged = 0

    @classmethod
    def prepare(cls, sheet: pd.DataFrame, settings: LogisticL2Settings, renders: Renders,
                seed: int) -> Baseline:
        features = load_stack_features(renders.stacks, renders.stack_ids,
                                       int(settings.time_bins), list(sheet["sample_id"]))
        return cls(features, settings.c_grid, settings.inner_folds, settings.standardize,
                   settings.max_iter, seed)

    def fit(self, train: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """The standardization (training rows' mean and std), the prevalence and one model
        per label that has both classes, with its C chosen by inner CV."""
        x_train = np.asarray(self.features[train], dtype=np.float64)
        mean = std = None
        if self.standardize:
            mean, std = x_train.mean(axis=0), x_train.std(axis=0)
            std[std == 0] = 1.0
            x_train = (x_train - mean) / std
        chosen = np.full(y.shape[1], np.nan)
        models = {}
        for j in range(y.shape[1]):
            if np.unique(y[:, j]).size < 2:
                continue
            chosen[j] = self.choose_c(x_train, y[:, j])
            models[j] = self._model(chosen[j])
            self._fit(models[j], x_train, y[:, j])
        self.chosen.append(chosen)
        return {"mean": mean, "std": std, "prior": y.mean(axis=0), "models": models,
                "chosen": chosen}

    def predict(self, state: dict[str, Any], rows: np.ndarray) -> np.ndarray:
        x = np.asarray(self.features[rows], dtype=np.float64)
        if state["mean"] is not None:
            x = (x - state["mean"]) / state["std"]
        out = np.tile(state["prior"], (len(rows), 1))
        for j, model in state["models"].items():
            out[:, j] = model.predict_proba(x)[:, 1]
        return out

    def choose_c(self, x: np.ndarray, y: np.ndarray) -> float:
        """The C of the grid with the lowest mean log loss over inner stratified folds of
        ``x`` (at most ``inner_folds``, fewer when a class has fewer rows; none and the
        smallest C when it has one). Along the grid each fit starts from the previous C's."""
        from sklearn.model_selection import StratifiedKFold

        minority = int(min(y.sum(), len(y) - y.sum()))
        n_splits = min(self.inner_folds, minority)
        if len(self.c_grid) == 1 or n_splits < 2:
            return self.c_grid[0]
        losses = np.zeros(len(self.c_grid))
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.seed)
        for inner_train, inner_val in splitter.split(x, y):
            model = self._model(self.c_grid[0], warm_start=True)
            for k, c in enumerate(self.c_grid):
                model.set_params(C=c)
                self._fit(model, x[inner_train], y[inner_train])
                losses[k] += mean_log_loss(y[inner_val, None],
                                           model.predict_proba(x[inner_val])[:, 1:])
        return self.c_grid[int(np.argmin(losses / n_splits))]

    def _model(self, c: float, warm_start: bool = False) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, solver="lbfgs", max_iter=self.max_iter,
                                  warm_start=warm_start)

    def _fit(self, model: Any, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", category=ConvergenceWarning)
            model.fit(x, y)
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                self.unconverged += 1
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def describe(self, labels: Sequence[str]) -> list[str]:
        """The C chosen per label in each fit (held-out folds in ascending order)."""
        lines = [f"fit {i} of {len(self.chosen)}: C per label "
                 + ", ".join(f"{label}={'prevalence' if np.isnan(c) else f'{c:g}'}"
                             for label, c in zip(labels, chosen))
                 for i, chosen in enumerate(self.chosen, start=1)]
        if self.unconverged:
            lines.append(f"{self.unconverged} lbfgs fits stopped at max_iter={self.max_iter} "
                         "before converging")
        return lines


# --- file-level entry point (called by workflow/scripts) ---------------------------------

def run_baseline(*, name: str, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                 settings: Mapping[str, Any], data: Mapping[str, Any], labels: Sequence[str],
                 seed: int, clip: float, task: str, fold_combine: str = "prob_mean") -> None:
    """Fit baseline ``name`` (``settings``: its validated ``baseline_settings`` block) on the
    folds of ``inputs["folds"]`` (renders: ``inputs["stacks"]``/``["stack_ids"]``); write its
    member tables ``outputs["oof"]``/``["test"]`` (test = every unlabelled sample of the
    sheet, in sheet order, its folds combined by ``fold_combine``) and, when named, each fold's fitted state ``outputs["fitted"]``
    (:mod:`.fitted`)."""
    from ..data.folds import read_folds
    from ..data.sheet import sample_sheet

    sheet = sample_sheet(data)
    baseline = baseline_class(name).prepare(sheet, baseline_settings(name, settings),
                                            Renders.from_inputs(inputs), seed)
    states: dict[int, Any] = {}
    oof, test = cross_fit(baseline, list(sheet["sample_id"]), sheet.attrs["label_table"],
                          read_folds(inputs["folds"]), unlabelled_ids(sheet), labels, clip, task,
                          states, fold_combine)
    for line in baseline.describe(labels):
        log.info("%s: %s", name, line)
    log.info("%s: %d OOF rows, %d test rows", name, len(oof), len(test))
    write_member_tables(outputs, oof, test)
    if "fitted" in outputs:
        write_fitted(outputs["fitted"], fitted_record(
            member=name, kind="baseline", member_class=type(baseline).__name__,
            settings=settings, seed=seed, labels=labels, task=task, clip=clip, states=states,
            fold_combine=fold_combine))
