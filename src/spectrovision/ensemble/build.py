"""The ensemble step: select members among the candidates, combine them, score every member
and the ensemble on the same out-of-fold samples."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .combine import combine_logits, normalise_weights
from .rows import ENSEMBLE_ROWS
from .selection import (choose_members, fit_label_weights, fit_shrink, prior_scores,
                        score_members)
from .tables import label_matrix, read_logit_table
from ..config.typed import settings_from
from ..errors import InputError

PathLike = str | os.PathLike[str]
ENSEMBLE_MEMBER, NESTED_MEMBER = ENSEMBLE_ROWS  # its rows in scores.csv
OPTIMISM_NOTE = ("The ensemble's out-of-fold score is optimistically biased when members "
                 "or weights are chosen on the same out-of-fold predictions (greedy or "
                 "bagged selection, per-label weights, shrink). The 'ensemble_nested' row is the "
                 "honest estimate: members, weights and shrink re-chosen without each fold, "
                 "scored on it.")


@dataclass(frozen=True)
class EnsembleSettings:
    """The validated ``ensemble:`` block."""

    selection: str
    members: list[str]
    include_baselines: bool
    per_label_weights: bool
    clip: float
    fold_combine: str  # used where member test tables are made (gather, cross_fit)
    shrink: bool
    bags: int
    bag_seed: int


@dataclass
class EnsembleResult:
    """What the ensemble step writes."""

    oof: pd.DataFrame
    test: pd.DataFrame
    scores: pd.DataFrame
    selection: dict[str, Any] = field(default_factory=dict)


def aligned_oof(members: Mapping[str, pd.DataFrame], labels: Sequence[str]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The common OOF rows (``sample_id, fold`` of the first member) and each member's
    logits in that row order. Every member must cover the same samples."""
    first_name = next(iter(members))
    ref = members[first_name][["sample_id", "fold"]].reset_index(drop=True)
    ids = set(ref["sample_id"])
    out: dict[str, np.ndarray] = {}
    for name, table in members.items():
        got = set(table["sample_id"])
        if got != ids:
            raise InputError(f"members/{name}/oof_logits.parquet",
                             f"covers other OOF samples than member '{first_name}' "
                             f"({len(ids - got)} missing, {len(got - ids)} extra)",
                             "gather every member on the same results/folds.csv")
        out[name] = table.set_index("sample_id").loc[ref["sample_id"], list(labels)].to_numpy(np.float64)
    return ref, out


@dataclass(frozen=True)
class Weighing:
    """How the chosen members combine: ``weights`` (n_members, n_labels) and, with shrink,
    the ``prior`` scores (n_labels,) that take the rest of each label's weight."""

    weights: np.ndarray
    prior: np.ndarray | None = None

    def combine(self, member_logits: Sequence[np.ndarray], clip: float,
                task: str) -> np.ndarray:
        """The chosen members' logits (in order) combined."""
        return combine_logits(member_logits, clip, self.weights, task, self.prior)


def weigh(oof: Sequence[np.ndarray], y: np.ndarray, per_label_weights: bool, shrink: bool,
          clip: float, task: str, base: Sequence[float] | None = None) -> Weighing:
    """The weights of the chosen members' OOF logits ``oof`` on labels ``y``: ``base`` (one
    weight per member, the same for every label; ``None`` = equal) or per-label
    (:func:`fit_label_weights`); with ``shrink`` their sum per label may fall below one, the
    rest going to the prior of ``y`` (:func:`fit_shrink` on the base weights)."""
    n_labels = y.shape[1]
    if per_label_weights and base is not None:
        raise ValueError("per-label weights replace the selection's weights: use one or the other")
    start = (np.full((len(oof), n_labels), 1.0 / len(oof)) if base is None
             else normalise_weights(np.repeat(np.asarray(base, dtype=np.float64)[:, None],
                                              n_labels, axis=1)))
    if not shrink:
        return Weighing(fit_label_weights(oof, y, clip) if per_label_weights else start)
    prior = prior_scores(y, clip, task)
    return Weighing(fit_label_weights(oof, y, clip, prior) if per_label_weights
                    else fit_shrink(oof, y, clip, prior, task, start), prior)


def choose_and_weigh(oof: Mapping[str, np.ndarray], y: np.ndarray, candidates: Sequence[str],
                     selection: str, listed: Sequence[str], per_label_weights: bool,
                     clip: float, task: str, shrink: bool = False, bags: int = 25,
                     bag_seed: int = 0) -> tuple[list[str], list[dict[str, Any]], Weighing]:
    """The chosen members, the selection's path (greedy steps, or each bag's members) and
    their :class:`Weighing`."""
    chosen, path, weights = choose_members(selection, candidates, listed, oof, y, clip, task,
                                           bags, bag_seed)
    base = None if weights is None else [weights[m] for m in chosen]
    return chosen, path, weigh([oof[m] for m in chosen], y, per_label_weights, shrink, clip,
                               task, base)


def nested_ensemble_oof(oof: Mapping[str, np.ndarray], y: np.ndarray, folds: np.ndarray,
                        candidates: Sequence[str], selection: str, listed: Sequence[str],
                        per_label_weights: bool, clip: float, task: str,
                        shrink: bool = False, bags: int = 25,
                        bag_seed: int = 0) -> tuple[np.ndarray, dict[str, list[str]]]:
    """The ensemble's logits on each fold's rows when members, weights and shrink (its prior
    included) are chosen on the other folds' rows only: an estimate of the selection's
    score that has not seen the rows it scores. With ``selection: all`` or ``list``, equal
    weights and no shrink it equals the ensemble. Returns the logits (rows as ``oof``) and
    each held-out fold's chosen members."""
    out = np.empty_like(next(iter(oof.values())))
    chosen_by_fold: dict[str, list[str]] = {}
    for fold in np.unique(folds):
        held = folds == fold
        seen = {m: x[~held] for m, x in oof.items()}
        chosen, _, weighing = choose_and_weigh(seen, y[~held], candidates, selection, listed,
                                               per_label_weights, clip, task, shrink, bags,
                                               bag_seed)
        out[held] = weighing.combine([oof[m][held] for m in chosen], clip, task)
        chosen_by_fold[str(fold)] = chosen
    return out, chosen_by_fold


def build_ensemble(oof_tables: Mapping[str, pd.DataFrame],
                   test_tables: Mapping[str, pd.DataFrame], label_table: pd.DataFrame,
                   labels: Sequence[str], candidates: Sequence[str], selection: str,
                   listed: Sequence[str] = (), per_label_weights: bool = False,
                   clip: float = 1e-4, task: str = "multilabel",
                   shrink: bool = False, *, bags: int = 25,
                   bag_seed: int = 0) -> EnsembleResult:
    """Select members among ``candidates`` (``bags`` and ``bag_seed``: selection
    ``bagged``), combine them (``shrink``: see :func:`weigh`), and score every member of
    ``oof_tables`` (models and baselines) and the ensemble on the same OOF samples."""
    ref, oof = aligned_oof(oof_tables, labels)
    y = label_matrix(label_table, list(ref["sample_id"]), labels)
    if per_label_weights and task == "multiclass":
        raise ValueError("per-label weights do not apply to task multiclass")
    chosen, path, weighing = choose_and_weigh(oof, y, candidates, selection, listed,
                                              per_label_weights, clip, task, shrink, bags,
                                              bag_seed)
    ens_oof = weighing.combine([oof[m] for m in chosen], clip, task)
    nested_oof, nested_members = nested_ensemble_oof(
        oof, y, ref["fold"].to_numpy(), candidates, selection, listed, per_label_weights,
        clip, task, shrink, bags, bag_seed)
    test_ids = test_tables[chosen[0]]["sample_id"]
    for m in chosen:
        if set(test_tables[m]["sample_id"]) != set(test_ids):
            raise InputError(f"members/{m}/test_logits.parquet",
                             f"holds other test samples than member '{chosen[0]}'",
                             "re-run prediction of every member on the current sample sheet")
    test_logits = [test_tables[m].set_index("sample_id").loc[test_ids, list(labels)]
                   .to_numpy(np.float64) for m in chosen]
    ens_test = weighing.combine(test_logits, clip, task)
    scores = score_members({**oof, ENSEMBLE_MEMBER: ens_oof, NESTED_MEMBER: nested_oof}, y,
                           labels, clip, task)
    oof_out = pd.concat([ref, pd.DataFrame(ens_oof, columns=list(labels))], axis=1)
    test_out = pd.DataFrame(ens_test, columns=list(labels))
    test_out.insert(0, "sample_id", test_ids.to_numpy())
    mean = scores[scores["label"] == "mean"].set_index("member")["log_loss"]
    info = {
        "selection": selection,
        "candidates": list(candidates),
        "members": chosen,
        "weights": {m: dict(zip(labels, map(float, w)))
                    for m, w in zip(chosen, weighing.weights)},
        "per_label_weights": per_label_weights,
        "shrink": shrink,
        # with shrink: the prior's scores, which take 1 - sum of the weights of each label
        "prior": (None if weighing.prior is None
                  else dict(zip(labels, map(float, weighing.prior)))),
        "greedy_path": path if selection == "greedy" else [],
        # selection bagged: each bootstrap bag's greedy choice (the weights are the shares)
        **({"bags": path, "bag_seed": bag_seed} if selection == "bagged" else {}),
        "clip": clip,
        "n_oof_samples": int(len(ref)),
        "oof_mean_log_loss": {m: float(v) for m, v in mean.items()},
        "nested": {"oof_mean_log_loss": float(mean[NESTED_MEMBER]),
                   "members_by_held_out_fold": nested_members},
        "task": task,
        "note": OPTIMISM_NOTE,
    }
    return EnsembleResult(oof=oof_out, test=test_out, scores=scores, selection=info)


def run_ensemble(*, inputs: Mapping[str, Sequence[PathLike]], outputs: Mapping[str, PathLike],
                 settings: Mapping[str, Any], members: Sequence[str],
                 candidates: Sequence[str], data: Mapping[str, Any], labels: Sequence[str],
                 task: str) -> EnsembleResult:
    """Read the member files (``inputs["oof"]``/``["test"]``, in ``members`` order), build the
    ensemble with ``settings`` (the validated ``ensemble:`` block), write ``outputs``
    ``scores``, ``selection``, ``oof`` and ``test``."""
    from ..data.sheet import sample_sheet
    from ..io import write_csv, write_json, write_parquet

    cfg = settings_from(EnsembleSettings, settings, "ensemble")
    oofs = {m: read_logit_table(p, labels) for m, p in zip(members, inputs["oof"])}
    for m, p in zip(members, inputs["oof"]):
        if "fold" not in oofs[m].columns:
            raise InputError(p, "no 'fold' column", "re-run the gather rule", column="fold")
    tests = {m: read_logit_table(p, labels) for m, p in zip(members, inputs["test"])}
    label_table = sample_sheet(data).attrs["label_table"]
    result = build_ensemble(oofs, tests, label_table, labels, candidates, cfg.selection,
                            cfg.members, cfg.per_label_weights, cfg.clip, task, cfg.shrink,
                            bags=cfg.bags, bag_seed=cfg.bag_seed)
    result.selection["fold_combine"] = cfg.fold_combine
    write_csv(outputs["scores"], result.scores)
    write_json(outputs["selection"], result.selection)
    write_parquet(outputs["oof"], result.oof)
    write_parquet(outputs["test"], result.test)
    return result
