"""Predict with one trained model x fold: time-width TTA, logits averaged.

Writes the fold's out-of-fold logits (its validation samples, with a ``fold`` column) and
logits for every sample without labels. Tables: ``sample_id`` + one column per label.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data.folds import fold_split
from ..data.metadata import Standardizer, metadata_values
from ..errors import InputError
from .augment import resize_time, tta_time_sizes
from .checkpoint import load_trained
from .imageset import load_image_set
from .loop import cuda_options
from .settings import PredictSettings, as_settings

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def predict_logits(model: nn.Module, images: torch.Tensor, widths: Sequence[int],
                   batch_size: int, device: str = "cpu", amp: bool = False,
                   channels_last: bool = False, meta: torch.Tensor | None = None) -> np.ndarray:
    """Logits averaged over time widths ``widths`` (each image resized along time);
    ``meta``: the standardised metadata rows of a fused model."""
    dev = torch.device(device)
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            xb = images[start:start + batch_size].to(dev).float()
            mb = None if meta is None else meta[start:start + batch_size].to(dev)
            total = None
            for width in widths:
                xw = resize_time(xb, width)
                if channels_last:
                    xw = xw.contiguous(memory_format=torch.channels_last)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    logits = model(xw, mb).float()
                total = logits if total is None else total + logits
            chunks.append((total / len(widths)).cpu().numpy().astype(np.float64))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0))


def logit_frame(ids: Sequence[str], logits: np.ndarray, labels: Sequence[str],
                fold: int | None = None) -> pd.DataFrame:
    table = pd.DataFrame(logits, columns=list(labels))
    table.insert(0, "sample_id", list(ids))
    if fold is not None:
        table.insert(1, "fold", fold)
    return table


def run_predict(*, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                settings: PredictSettings | Mapping[str, Any], fold: int,
                unlabelled: Sequence[str], threads: int = 1,
                metadata: pd.DataFrame | None = None) -> dict[str, Any]:
    """Write ``outputs`` ``oof`` (the fold's validation samples), ``test`` (unlabelled
    samples) logits and, when named, ``info`` (tta.json).

    ``inputs``: ``weights`` (model.pt), ``stacks``/``stack_ids`` (the model's stacked
    renders of every split) and ``folds``; ``settings``: the ``predict:`` block (TTA
    widths, step, batch size). A fused model reads its metadata columns from ``metadata``
    (the sample sheet), standardised with the statistics stored at training."""
    from ..io import write_json, write_parquet

    tta = as_settings(PredictSettings, settings, "predict")
    torch.set_num_threads(max(int(threads), 1))
    folds = pd.read_csv(inputs["folds"], dtype={"sample_id": str})
    _, oof_ids = fold_split(folds, fold)
    test_ids = sorted(map(str, unlabelled))
    images = load_image_set(inputs["stacks"], inputs["stack_ids"],
                            keep=set(oof_ids) | set(test_ids))
    (oof, test), used = predict_id_sets(inputs["weights"], images, [oof_ids, test_ids], tta,
                                        metadata, fold)
    labels, widths = used["labels"], used["tta_widths"]
    write_parquet(outputs["oof"], logit_frame(oof_ids, oof, labels, fold))
    write_parquet(outputs["test"], logit_frame(test_ids, test, labels))
    info = {"fold": fold, "tta_widths": widths, "n_oof": len(oof_ids), "n_test": len(test_ids),
            "device": used["device"]}
    if "info" in outputs:
        write_json(outputs["info"], info)
    log.info("predicted %d out-of-fold and %d test samples with widths %s", len(oof_ids),
             len(test_ids), widths)
    return info


def predict_id_sets(weights: PathLike, images: Any, id_sets: Sequence[Sequence[str]],
                    tta: PredictSettings, metadata: pd.DataFrame | None = None,
                    fold: int | None = None) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Logits of each list of ``id_sets`` (rows of ``images``, a loaded image set) from the
    trained bundle ``weights`` with the TTA of ``tta``, on a leased device; and what was
    used (``labels``, ``tta_widths``, ``device``, ``fold``). ``fold`` given: the bundle must
    have been trained on it. Images of another shape than the model was trained on are an
    InputError naming the bundle."""
    from .lease import lease_device

    with lease_device() as lease:
        model, bundle = load_trained(weights, lease.device)
        if fold is not None and bundle["fold"] != fold:
            raise ValueError(f"{weights} was trained on fold {bundle['fold']}, not {fold}")
        trained_shape = tuple(int(v) for v in bundle["image_shape"])
        if tuple(images.shape) != trained_shape:
            raise InputError(weights, f"was trained on images of shape {trained_shape} "
                             f"(channels, m/z, x), but the renders have {tuple(images.shape)}",
                             "render with the representation settings the model was "
                             "trained with")
        widths = tta_time_sizes(int(bundle["train_width"]), tta.tta_n_widths, tta.tta_step)
        amp, channels_last = cuda_options(bundle["settings"], lease.device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        labels = bundle["labels"]
        scaler = Standardizer.from_bundle(bundle)
        out = [predict_logits(model, images.select(ids), widths, tta.batch_size, lease.device,
                              amp, channels_last, bundle_meta(scaler, metadata, ids))
               if len(ids) else np.zeros((0, len(labels))) for ids in id_sets]
    return out, {"labels": list(labels), "tta_widths": widths, "device": lease.device,
                 "fold": int(bundle["fold"])}


def bundle_meta(scaler: Standardizer | None, metadata: pd.DataFrame | None,
                ids: Sequence[str]) -> torch.Tensor | None:
    """Standardised metadata rows of ``ids`` for a fused model (None for an image-only one)."""
    if scaler is None:
        return None
    if metadata is None:
        raise InputError("sample sheet", f"the model reads metadata columns {list(scaler.columns)}"
                         " but no sample sheet was passed", "pass run_predict(metadata=...)")
    return torch.from_numpy(scaler.transform(metadata_values(metadata, ids, scaler.columns)))
