"""Apply mode: one trained model x fold predicts the new data set (:func:`run_apply_model`).

Its own module because it is the only apply step that needs torch: the other apply rules
(:mod:`spectrovision.apply.predict`) run in the torch-free core environment, whose package
list is checked against their import closure.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..errors import InputError

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def run_apply_model(*, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                    settings: Mapping[str, Any], sample_ids: Sequence[str], labels: Sequence[str],
                    threads: int = 1, metadata: pd.DataFrame | None = None) -> dict[str, Any]:
    """Logits of ``sample_ids`` from one trained fold (``inputs["weights"]``, renders
    ``inputs["stacks"]``/``["stack_ids"]``) with the TTA of ``settings`` (the trained run's
    ``predict:`` block): ``outputs["logits"]`` and ``outputs["info"]`` (what was used)."""
    import torch

    from ..io import write_json, write_parquet
    from ..learn.imageset import open_stacks
    from ..learn.predict import logit_frame, predict_id_sets
    from ..learn.settings import PredictSettings, as_settings

    torch.set_num_threads(max(int(threads), 1))
    ids = [str(s) for s in sample_ids]
    images = open_stacks(inputs["stacks"], inputs["stack_ids"])
    (logits,), used = predict_id_sets(inputs["weights"], images, [ids],
                                      as_settings(PredictSettings, settings, "predict"), metadata)
    if used["labels"] != list(labels):
        raise InputError(inputs["weights"], f"predicts labels {used['labels']}, not the trained "
                         f"run's {list(labels)}", "re-run the trained workflow")
    write_parquet(outputs["logits"], logit_frame(ids, logits, labels))
    info = {**used, "n_samples": len(ids), "weights": str(inputs["weights"])}
    write_json(outputs["info"], info)
    log.info("fold %d: %d samples with TTA widths %s", used["fold"], len(ids),
             used["tta_widths"])
    return info
