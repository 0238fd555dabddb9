"""The submission: the ensemble's test probabilities in the exact submission_format layout."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import read_csv, write_csv
from ..metrics import to_probs

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def probabilities(test_logits: pd.DataFrame, labels: Sequence[str],
                  task: str = "multilabel") -> pd.DataFrame:
    """``sample_id`` + the sigmoid of each label's logit (multiclass: the softmax over the
    classes, i.e. class probabilities summing to 1)."""
    out = pd.DataFrame(to_probs(test_logits[list(labels)].to_numpy(np.float64), task),
                       columns=list(labels))
    out.insert(0, "sample_id", test_logits["sample_id"].astype(str).to_numpy())
    return out


def read_submission_format(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The template, ids as strings; its first column is the id column."""
    table = read_csv(path, None, dtype=str)
    if table.shape[1] < 2:
        raise InputError(path, f"has {table.shape[1]} column(s)",
                         "give an id column followed by one column per label")
    return table


def unlabelled_format(sample_ids: Sequence[str], labels: Sequence[str]) -> pd.DataFrame:
    """A template when there is no submission_format file: the given ids, one column per label."""
    table = pd.DataFrame({"sample_id": list(sample_ids)})
    for label in labels:
        table[label] = 0.5
    return table


def build_submission(test_probs: pd.DataFrame, submission_format: pd.DataFrame,
                     clip: float = 1e-4,
                     source: str | os.PathLike[str] = "submission_format.csv") -> pd.DataFrame:
    """The template's ids in its order and its columns in its order, filled with
    ``test_probs`` (``sample_id`` + label probabilities) clipped into ``[clip, 1-clip]``.

    Ids of the template without a prediction, or label columns the predictions lack, raise
    :class:`InputError` naming them; predicted ids the template lacks are ignored (logged).
    """
    if not 0.0 < clip < 0.5:
        raise ValueError(f"clip must lie in (0, 0.5) so probabilities stay inside (0, 1): {clip}")
    id_col, label_cols = submission_format.columns[0], list(submission_format.columns[1:])
    wanted = submission_format[id_col].astype(str)
    missing_cols = [c for c in label_cols if c not in test_probs.columns]
    if missing_cols:
        raise InputError(source, f"label columns {missing_cols} have no predictions",
                         "use the labels the models were trained on", column=missing_cols[0])
    predicted = test_probs.assign(sample_id=test_probs["sample_id"].astype(str))
    predicted = predicted.set_index("sample_id")
    missing = [s for s in wanted if s not in predicted.index]
    if missing:
        raise InputError(source, f"{len(missing)} sample ids have no prediction: "
                         f"{missing[:10]}{' ...' if len(missing) > 10 else ''}",
                         "render and predict every sample of the template (check the "
                         "metadata's split column), or fix data.submission_format",
                         column=id_col)
    extra = len(set(predicted.index) - set(wanted))
    if extra:
        log.info("%d predicted samples are not in the submission format; ignored", extra)
    values = predicted.loc[wanted, label_cols].to_numpy(np.float64)
    if not np.isfinite(values).all():
        raise InputError(source, "non-finite predicted probability",
                         "re-run the ensemble step that wrote the predictions")
    out = pd.DataFrame(np.clip(values, clip, 1.0 - clip), columns=label_cols)
    out.insert(0, id_col, submission_format[id_col].to_numpy())
    return out


def run_submission(*, inputs: Mapping[str, PathLike], outputs: Mapping[str, PathLike],
                   labels: Sequence[str], unlabelled: Sequence[str], clip: float,
                   task: str) -> pd.DataFrame:
    """Write ``outputs["submission"]`` from the ensemble's test logits ``inputs["test"]``: the
    layout of the template ``inputs["format"]`` when there is one, else every unlabelled
    sample in sheet order.

    Template samples that have labels (Mars-2's val split is in its submission format and
    has ``val_labels.csv``) take their out-of-fold ensemble prediction from
    ``inputs["oof"]``: predicted by models that never trained on them.
    """
    from .tables import read_logit_table

    out, format_path = outputs["submission"], inputs.get("format")
    probs = probabilities(read_logit_table(inputs["test"], labels), labels, task)
    oof = probabilities(read_logit_table(inputs["oof"], labels), labels, task)
    oof = oof[~oof["sample_id"].isin(set(probs["sample_id"]))]
    probs = pd.concat([probs, oof[probs.columns]], ignore_index=True)
    if format_path is None:
        template, source = unlabelled_format(unlabelled, labels), "unlabelled samples"
    else:
        template, source = read_submission_format(format_path), str(format_path)
    submission = build_submission(probs, template, clip, source)
    write_csv(out, submission)
    log.info("wrote %d rows x %d labels to %s", len(submission), submission.shape[1] - 1, out)
    return submission
