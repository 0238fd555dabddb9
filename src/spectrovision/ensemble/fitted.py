"""Fitted members on disk: the per-fold states of a baseline or tabular member
(``members/{member}/fitted.pkl``), written where the member is cross-fitted and read where
it is applied to a new data set (:mod:`spectrovision.apply`).

The file is a pickle (scikit-learn models, LightGBM boosters, arrays) of a plain dict:
``format``, ``member``, ``kind`` (baseline or tabular), ``member_class`` (the class that was
fitted: a conditional prior falls back to the prior when the sheet has no group column),
``settings`` (the member's validated settings block), ``seed``, ``labels``, ``task``,
``clip``, ``fold_combine`` (how its folds combine; absent in older files = ``prob_mean``),
``levels`` (codes of text metadata columns), ``states`` (fold -> state) and the
package ``versions`` it was written with. Load only files your own runs wrote: unpickling
runs code.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError

PathLike = str | os.PathLike[str]
FORMAT = 1


def fitted_record(*, member: str, kind: str, member_class: str, settings: Mapping[str, Any],
                  seed: int | None, labels: Sequence[str], task: str, clip: float,
                  states: Mapping[int, Any],
                  levels: Mapping[str, Sequence[str]] | None = None,
                  fold_combine: str = "prob_mean") -> dict[str, Any]:
    """The record :func:`write_fitted` stores."""
    from ..provenance.records import package_versions

    return {"format": FORMAT, "member": member, "kind": kind, "member_class": member_class,
            "settings": dict(settings), "seed": seed, "labels": list(labels), "task": task,
            "clip": float(clip), "fold_combine": fold_combine, "levels": {k: list(v) for k, v in (levels or {}).items()},
            "states": {int(k): v for k, v in states.items()}, "versions": package_versions()}


def write_fitted(path: PathLike, record: Mapping[str, Any]) -> None:
    """Write a :func:`fitted_record` atomically."""
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            pickle.dump(dict(record), handle, protocol=pickle.HIGHEST_PROTOCOL)


def read_fitted(path: PathLike, member: str, labels: Sequence[str]) -> dict[str, Any]:
    """The record of ``path``, checked: the member's name, the format and the labels."""
    try:
        with open(path, "rb") as handle:
            record = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise InputError(path, f"cannot be read as a fitted member ({exc})",
                         "re-run the trained workflow's baseline/tabular rule") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError(path, f"is not a fitted-member file of format {FORMAT}",
                         "re-run the trained workflow's baseline/tabular rule")
    if record["member"] != member:
        raise InputError(path, f"holds member '{record['member']}', not '{member}'",
                         "point trained_results at the run that fitted this member")
    if list(record["labels"]) != list(labels):
        raise InputError(path, f"was fitted on labels {record['labels']}, not {list(labels)}",
                         "apply the members of one trained run together")
    return record
