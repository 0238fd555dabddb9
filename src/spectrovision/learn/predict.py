"""Predict with one trained model x fold: time-width TTA (and, with ``tta_augment_n``,
seeded augmented views of the cached render), logits averaged.

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

from ..data.folds import fold_split, read_folds
from ..data.metadata import Standardizer, metadata_values
from ..errors import InputError
from .augment import CachedAugment, batch_generator, resize_time, tta_time_sizes
from .checkpoint import load_trained
from .imageset import open_stacks
from .device import DevicePath, accelerated, device_path
from .settings import PredictSettings

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def predict_logits(model: nn.Module, images: torch.Tensor, widths: Sequence[int],
                   batch_size: int, device: str = "cpu", amp: bool = False,
                   channels_last: bool = False, meta: torch.Tensor | None = None,
                   augment: CachedAugment | None = None, background: torch.Tensor | None = None,
                   n_views: int = 0, seed: int = 0) -> np.ndarray:
    """Logits averaged over time widths ``widths`` (each image resized along time);
    ``meta``: the standardised metadata rows of a fused model. ``augment``: the model's
    cached-render augmentations (``background``: the images' quantiles): the plain view,
    or with ``n_views`` > 0 that many random views (each at every width) drawn from a
    generator seeded with ``seed`` (same images, order and batch size = same logits).
    On an accelerator (:mod:`~spectrovision.learn.device`) the images move to the device
    once and every view and width is made there."""
    dev = torch.device(device)
    path = DevicePath(dev, amp, channels_last, accelerated(dev))
    images, meta = path.place(images), path.place(meta)
    model.eval()
    chunks = []
    host = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            xb = images[start:start + batch_size].to(dev, non_blocking=True).float()
            mb = None if meta is None else meta[start:start + batch_size].to(dev)
            bb = None if background is None else background[start:start + batch_size]
            if augment is not None and n_views > 0:
                gen = batch_generator(host, dev)
                views = [augment.view(xb, bb, gen) for _ in range(n_views)]
            else:
                views = [xb if augment is None else augment.plain(xb, bb)]
            total = None
            for xv in views:
                for width in widths:
                    xw = path.memory_format(resize_time(xv, width))
                    with path.autocast():
                        logits = model(xw, mb).float()
                    total = logits if total is None else total + logits
            chunks.append((total / (len(widths) * len(views))).cpu().numpy()
                          .astype(np.float64))
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
    widths, step, augmented views and their seed, batch size; keys it lacks take the
    schema's defaults). A fused model reads its metadata columns from ``metadata``
    (the sample sheet), standardised with the statistics stored at training."""
    from ..io import write_json, write_parquet

    tta = settings if isinstance(settings, PredictSettings) else \
        PredictSettings.with_defaults(settings)
    torch.set_num_threads(max(int(threads), 1))
    folds = read_folds(inputs["folds"])
    _, oof_ids = fold_split(folds, fold)
    test_ids = sorted(map(str, unlabelled))
    images = open_stacks(inputs["stacks"], inputs["stack_ids"])  # each id set read as used
    (oof, test), used = predict_id_sets(inputs["weights"], images, [oof_ids, test_ids], tta,
                                        metadata, fold)
    labels, widths = used["labels"], used["tta_widths"]
    write_parquet(outputs["oof"], logit_frame(oof_ids, oof, labels, fold))
    write_parquet(outputs["test"], logit_frame(test_ids, test, labels))
    info = {"fold": fold, "tta_widths": widths, "n_oof": len(oof_ids), "n_test": len(test_ids),
            "device": used["device"]}
    if "tta_augment" in used:
        info["tta_augment"] = used["tta_augment"]
    if "info" in outputs:
        write_json(outputs["info"], info)
    log.info("predicted %d out-of-fold and %d test samples with widths %s", len(oof_ids),
             len(test_ids), widths)
    return info


def predict_id_sets(weights: PathLike, images: Any, id_sets: Sequence[Sequence[str]],
                    tta: PredictSettings, metadata: pd.DataFrame | None = None,
                    fold: int | None = None) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Logits of each list of ``id_sets`` (rows of ``images``, a loaded image set) from the
    trained bundle ``weights`` with the TTA of ``tta`` (widths and, with
    ``tta_augment_n``, seeded augmented views), on a leased device; and what was used
    (``labels``, ``tta_widths``, ``device``, ``fold``, ``tta_augment`` when views were
    asked for). ``fold`` given: the bundle must have been trained on it. Renders of
    another shape than the model was trained on are an InputError naming the bundle."""
    from .lease import lease_device

    with lease_device() as lease:
        model, bundle = load_trained(weights, lease.device)
        if fold is not None and bundle["fold"] != fold:
            raise ValueError(f"{weights} was trained on fold {bundle['fold']}, not {fold}")
        augment = CachedAugment.from_settings(bundle["settings"])
        trained_shape = tuple(int(v) for v in bundle["image_shape"])
        if augment.image_shape(images.shape) != trained_shape:
            raise InputError(weights, f"was trained on images of shape {trained_shape} "
                             "(channels, m/z, x after scan_stride), but the renders give "
                             f"{augment.image_shape(images.shape)}", "render with the "
                             "representation settings the model was trained with")
        widths = tta_time_sizes(int(bundle["train_width"]), tta.tta_n_widths, tta.tta_step)
        path = device_path(bundle["settings"].amp, bundle["settings"].channels_last,
                           lease.device)
        if path.channels_last:
            model = model.to(memory_format=torch.channels_last)
        labels = bundle["labels"]
        scaler = Standardizer.from_bundle(bundle)
        n_views = tta.tta_augment_n if augment.views else 0
        if tta.tta_augment_n and not n_views:
            log.warning("predict.tta_augment_n = %d, but model '%s' has no scan, scaling or "
                        "background augmentation to draw views from: predicting its plain "
                        "view", tta.tta_augment_n, bundle["settings"].name)

        def logits_of(ids: Sequence[str]) -> np.ndarray:
            if not len(ids):
                return np.zeros((0, len(labels)))
            selected = images.select(ids)
            return predict_logits(model, selected, widths, tta.batch_size, lease.device,
                                  path.amp, path.channels_last,
                                  bundle_meta(scaler, metadata, ids), augment,
                                  augment.background(selected, lease.device), n_views,
                                  tta.tta_augment_seed)

        out = [logits_of(ids) for ids in id_sets]
    used = {"labels": list(labels), "tta_widths": widths, "device": lease.device,
            "fold": int(bundle["fold"])}
    if tta.tta_augment_n:
        used["tta_augment"] = augment_views(augment, n_views, tta.tta_augment_seed, widths)
    return out, used


def augment_views(augment: CachedAugment, n_views: int, seed: int,
                  widths: Sequence[int]) -> dict[str, Any]:
    """What tta.json records of the augmented views: how many, their seed and draws."""
    return {"n_views": n_views, "seed": seed, "forward_passes": max(n_views, 1) * len(widths),
            "scan_jitter": augment.scan_jitter, "scan_stride": augment.scan_stride,
            "mass_scale_sigma": augment.mass_scale_sigma,
            "global_scale_sigma": augment.global_scale_sigma,
            "background_mix_quantiles": list(augment.quantiles or []) or None}


def bundle_meta(scaler: Standardizer | None, metadata: pd.DataFrame | None,
                ids: Sequence[str]) -> torch.Tensor | None:
    """Standardised metadata rows of ``ids`` for a fused model (None for an image-only one)."""
    if scaler is None:
        return None
    if metadata is None:
        raise InputError("sample sheet", f"the model reads metadata columns {list(scaler.columns)}"
                         " but no sample sheet was passed", "pass run_predict(metadata=...)")
    return torch.from_numpy(scaler.transform(metadata_values(metadata, ids, scaler.columns)))
