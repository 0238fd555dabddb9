"""Apply mode's predictions: each selected member of a trained run predicts every sample of
the new data set, and the trained ensemble's weights combine them.

- models: each fold's weights bundle with the trained run's TTA
  (:func:`spectrovision.apply.model.run_apply_model`, its own module: only it needs torch),
  then the folds combined by the trained ``ensemble.fold_combine``
  (:func:`run_apply_gather`), as the trained run made its test predictions;
- baselines and tabular members: each fold's fitted state (``fitted.pkl``) over features
  built from the new renders and sheet (:func:`run_apply_member`);
- :func:`run_apply_ensemble`: the trained selection's weights, shrink prior and clip, probabilities in
  ``predictions.csv`` and, for labelled new samples, every member's and the ensemble's
  log loss.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..ensemble.rows import ENSEMBLE_ROWS
from ..errors import InputError

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def run_apply_gather(*, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                     labels: Sequence[str], clip: float, task: str,
                     fold_combine: str = "prob_mean") -> None:
    """One model's logits: its folds' tables (``inputs["logits"]``) combined by
    ``fold_combine`` (:func:`..ensemble.gather.combine_folds`), written to
    ``outputs["logits"]``."""
    from ..ensemble.gather import combine_folds
    from ..ensemble.tables import read_logit_table
    from ..io import write_parquet

    tables = [read_logit_table(p, labels) for p in inputs["logits"]]
    write_parquet(outputs["logits"], combine_folds(tables, labels, clip, task, fold_combine))


def run_apply_member(*, name: str, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                     data: Mapping[str, Any], labels: Sequence[str], num_threads: int = 1) -> None:
    """A baseline's or tabular member's logits of every sample of the new sheet (``data``)
    from its fitted states (``inputs["fitted"]``; renders ``inputs["stacks"]``/
    ``["stack_ids"]`` when it reads one), as the trained run made its test table."""
    from ..data.sheet import sample_sheet
    from ..ensemble.fitted import read_fitted
    from ..ensemble.members import Renders, predict_fitted
    from ..io import write_parquet

    record = read_fitted(inputs["fitted"], name, labels)
    sheet = sample_sheet(data, labels_required=False)  # a new batch may have no labels
    member = _prepared_member(record, sheet, Renders.from_inputs(inputs), num_threads)
    if type(member).__name__ != record["member_class"]:
        raise InputError(inputs["fitted"], f"was fitted as {record['member_class']} but this "
                         f"data set makes {name} a {type(member).__name__} (a metadata column "
                         "the trained sheet had or lacked)", "give the new sheet the trained "
                         "run's metadata columns")
    table = predict_fitted(member, record["states"], list(sheet["sample_id"]), labels,
                           record["clip"], record["task"],
                           record.get("fold_combine", "prob_mean"))
    write_parquet(outputs["logits"], table)
    log.info("%s: %d samples from %d fitted folds", name, len(table), len(record["states"]))


def _prepared_member(record: Mapping[str, Any], sheet: pd.DataFrame, renders: Any,
                     num_threads: int) -> Any:
    """The member of ``record`` prepared over the rows of ``sheet``."""
    if record["kind"] == "baseline":
        from ..ensemble.baselines import baseline_class, baseline_settings

        name = record["member"]
        return baseline_class(name).prepare(sheet, baseline_settings(name, record["settings"]),
                                            renders, record["seed"])
    from ..ensemble.tabular import (TABULAR_KIND, TABULAR_MEMBERS, GBMSettings,
                                    fitted_settings, member_features)

    member = fitted_settings(record["settings"], record["member"])
    return TABULAR_MEMBERS.get(TABULAR_KIND)(member_features(member, sheet, renders, record["levels"]),
                     GBMSettings.from_settings(member, num_threads), task=record["task"])


def run_apply_ensemble(*, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                       members: Sequence[str], selection: Mapping[str, Any],
                       data: Mapping[str, Any], labels: Sequence[str]) -> pd.DataFrame:
    """Combine the members' logits (``inputs["members"]``, in ``members`` order) with the
    trained ``selection`` (weights, clip, task): ``outputs["logits"]``,
    ``outputs["predictions"]`` (``sample_id`` + one probability per label, sheet order) and
    ``outputs["scores"]`` (per member and the ensemble, on the labelled new samples; no rows
    when there are none)."""
    from ..data.sheet import sample_sheet
    from ..ensemble.combine import combine_logits
    from ..ensemble.selection import score_members
    from ..ensemble.tables import label_matrix, read_logit_table
    from ..io import write_csv, write_parquet
    from ..metrics import clipped_probs

    clip, task = float(selection["clip"]), selection["task"]
    sheet = sample_sheet(data, labels_required=False)  # a new batch may have no labels
    ids = list(sheet["sample_id"])
    logits = {}
    for name, path in zip(members, inputs["members"]):
        table = read_logit_table(path, labels).set_index("sample_id")
        missing = [s for s in ids if s not in table.index]
        if missing:
            raise InputError(path, f"lacks {len(missing)} samples of the sheet, e.g. "
                             f"{missing[:5]}", "re-run the apply rules for this data set")
        logits[name] = table.loc[ids, list(labels)].to_numpy(np.float64)
    weights = np.array([[selection["weights"][m][lab] for lab in labels] for m in members])
    shrunk = selection.get("prior")  # ensemble.shrink: the prior takes the rest of the weight
    prior = None if shrunk is None else np.array([shrunk[lab] for lab in labels])
    combined = combine_logits([logits[m] for m in members], clip, weights, task, prior)
    frame = pd.DataFrame(combined, columns=list(labels))
    frame.insert(0, "sample_id", ids)
    write_parquet(outputs["logits"], frame)
    probs = pd.DataFrame(clipped_probs(combined, clip, task), columns=list(labels))
    probs.insert(0, "sample_id", ids)
    write_csv(outputs["predictions"], probs)
    rows = [i for i, flag in enumerate(sheet["labelled"]) if flag]
    labelled = [ids[i] for i in rows]
    if labelled:
        y = label_matrix(sheet.attrs["label_table"], labelled, labels)
        ensemble = ENSEMBLE_ROWS[0]  # the trained run's ensemble row (no nested row here)
        scores = score_members({**{m: logits[m][rows] for m in members},
                                ensemble: combined[rows]}, y, labels, clip, task)
        mean = scores[(scores["member"] == ensemble) & (scores["label"] == "mean")]
        log.info("scored %d labelled samples: ensemble mean log loss %.5f", len(labelled),
                 float(mean["log_loss"].iloc[0]))
    else:
        scores = pd.DataFrame(columns=["member", "label", "log_loss"])
    write_csv(outputs["scores"], scores)
    log.info("%d samples predicted by %s", len(ids), ", ".join(members))
    return probs
