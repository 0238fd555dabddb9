"""The training loop of one model: seeded, resumable, one device; the kept weights are the
last epoch's or the lowest validation loss's (``keep_weights``), or the mean of the last
k epochs' (``average_last_epochs``).

Recipe (all from :class:`~spectrovision.learn.settings.ModelSettings`): the cached-render
augmentations (:class:`~spectrovision.learn.augment.CachedAugment`: random scan, background
mix, intensity scaling), batch-wise random time resize, time warp, sample mixing, mixup,
the configured loss, AdamW with linear warm-up + cosine decay (``lr_cycles`` warm
restarts), gradient clipping, an optional running average of the weights (``ema_decay``,
:mod:`~spectrovision.learn.ema`), on CUDA bf16 autocast, channels_last and the image
stack kept on the device (:mod:`~spectrovision.learn.device`, which tests force on the
CPU), optional batch-norm recalibration before validating. After every epoch the whole
training state goes to the checkpoint (:mod:`~spectrovision.learn.checkpoint`); a
re-started run with the same fingerprint continues from there and, on the CPU, ends with
the same weights as an uninterrupted run.

``average_last_epochs`` (k > 1) snapshots the validated weights (the running average's with
``ema_decay``) after each of the last k epochs (the snapshots travel in the checkpoint) and
keeps their mean (:func:`~spectrovision.learn.ema.average_states`); the batch-norm running
statistics of that mean are then re-estimated by :func:`recalibrate_batch_norm` (averaged
weights give activations of their own, whose statistics are not the mean of the epochs';
the pass draws no random numbers, so a resumed run ends with the same bits), and the mean
is validated once (:attr:`TrainResult.averaged_val_loss`).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config.checks import check_weight_averaging
from ..config.typed import as_dict
from ..errors import ConfigError
from ..io import write_json
from .augment import (CachedAugment, batch_generator, mixup_with_meta, random_time_width,
                      resize_time, time_warp, training_width)
from .checkpoint import clone_state, matching_state, restore_state, save_torch, training_state
from .device import device_path
from .ema import WeightAverage, average_states
from .losses import eval_loss, make_loss, sed_frame_loss
from .models import create_model, model_summary
from .progress import PROGRESS_FILE, progress_record
from .settings import ModelSettings

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]
STOP_AFTER_EPOCH_ENV = "SPECTROVISION_KILL_AFTER_EPOCH"  # tests: SIGKILL self after epoch k
#: a training checkpoint is written after the first epoch that ends at least this many seconds
#: after the last one was (or training began): a killed job loses at most about this much work
#: plus one epoch. Every epoch's state would cost a resnet10t fold of the demo ~7% of its time
#: (0.17 s a 2.4 s epoch: weights, optimiser and best weights, ~60 MB).
CHECKPOINT_INTERVAL_S = 30.0


# --- schedule, seeds, device ---------------------------------------------------------------

def lr_at(step: int, peak: float, warmup_steps: int, total_steps: int,
          cycles: int = 1) -> float:
    """Linear warm-up to ``peak`` over ``warmup_steps``, then cosine decay to 0; with
    ``cycles`` > 1 the steps after warm-up split into that many equal cycles, each a cosine
    from ``peak`` down to 0 (warm restarts); the last cycle ends at the last step."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    n_cycles = max(int(cycles), 1)
    span = max(total_steps - warmup_steps, 1) / n_cycles
    after = min(step - warmup_steps, total_steps - warmup_steps)
    k = min(int(after // span), n_cycles - 1)
    phase = min((after - k * span) / span, 1.0)
    return peak * 0.5 * (1 + math.cos(math.pi * phase))


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed + 1)


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True).float()
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


# --- the loop ------------------------------------------------------------------------------

@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]  # the kept weights (settings.keep_weights)
    history: list[dict[str, float]]
    kept_epoch: int
    best_epoch: int
    best_val_loss: float
    resumed_from_epoch: int | None
    seconds: float
    model_info: dict[str, int] = field(default_factory=dict)
    averaged_val_loss: float | None = None  # average_last_epochs: the kept mean's

    @property
    def kept_val_loss(self) -> float:
        """The validation loss of the kept weights."""
        if self.averaged_val_loss is not None:
            return self.averaged_val_loss
        return float(self.history[self.kept_epoch - 1]["val_loss"])


def _batches(batch_size: int, order: torch.Tensor) -> list[torch.Tensor]:
    """Mini-batches of ``order``; a last batch of one sample joins the previous one
    (batch norm cannot train on a single sample)."""
    chunks = list(order.split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < 2:
        last = chunks.pop()
        chunks[-1] = torch.cat([chunks[-1], last])
    return chunks


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not sys.stderr.isatty())


def _plain_batch(x: torch.Tensor, start: int, stop: int, device: torch.device,
                 channels_last: bool, augment: CachedAugment | None,
                 background: torch.Tensor | None) -> torch.Tensor:
    """Images ``start:stop`` on the device, in the plain (evaluation) view of ``augment``."""
    xb = _to_device(x[start:stop], device, channels_last)
    if augment is None or not augment.reshapes:
        return xb
    bb = None if background is None else background[start:stop]
    xb = augment.plain(xb, bb)
    return xb.contiguous(memory_format=torch.channels_last) if channels_last else xb


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, width: int, batch_size: int,
             task: str, device: torch.device, amp: bool, channels_last: bool,
             meta: torch.Tensor | None = None, augment: CachedAugment | None = None,
             background: torch.Tensor | None = None) -> float:
    """Mean validation log loss at the training width (``meta``: standardised metadata;
    ``augment``/``background``: the plain view of the cached-render augmentations)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = _plain_batch(x, start, start + batch_size, device, channels_last, augment,
                              background)
            yb = y[start:start + batch_size].to(device)
            mb = None if meta is None else meta[start:start + batch_size].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(resize_time(xb, width), mb).float()
            total += float(eval_loss(logits, yb, task)) * len(xb)
            count += len(xb)
    return total / max(count, 1)


def recalibrate_batch_norm(model: nn.Module, x: torch.Tensor, width: int, batch_size: int,
                           device: torch.device, channels_last: bool,
                           meta: torch.Tensor | None = None,
                           augment: CachedAugment | None = None,
                           background: torch.Tensor | None = None) -> None:
    """Re-estimate every batch-norm layer's running mean and variance as the plain average
    over one pass of ``x`` (in order, at the training width, no gradient; dropout stays
    off, no random numbers are drawn). Short runs on small data sets otherwise validate
    with running statistics that lag far behind the weights (eval mode near chance while
    train mode is right); setting ``precise_bn``. ``augment``: as :func:`evaluate`."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    was_training = model.training
    momenta = [m.momentum for m in norms]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the pass
        norm.train()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = _plain_batch(x, start, start + batch_size, device, channels_last, augment,
                              background)
            mb = None if meta is None else meta[start:start + batch_size].to(device)
            model(resize_time(xb, width), mb)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train(was_training)


def train_model(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor,
                val_y: torch.Tensor, settings: ModelSettings, task: str, *,
                checkpoint: PathLike | None = None, device: str = "cpu",
                fingerprint: Mapping[str, str] | None = None, label: str = "",
                train_meta: torch.Tensor | None = None,
                val_meta: torch.Tensor | None = None,
                checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S) -> TrainResult:
    """Train with the model's recipe; return the kept weights (``settings.keep_weights``: the
    last epoch's, or the lowest validation loss's) and the history.
    ``train_meta``/``val_meta``: standardised metadata rows for a fused model (else None).
    ``checkpoint``: where the resumable state goes, after the first epoch ending at least
    ``checkpoint_interval_s`` after the last save (0: every epoch); the progress record
    beside it is written every epoch. When and how often it is saved never changes the
    result: a resumed run ends with the same weights."""
    started = time.time()
    check_weight_averaging(settings.name, as_dict(settings))
    n_average = int(settings.average_last_epochs) if settings.average_last_epochs > 1 else 0
    path = device_path(settings.amp, settings.channels_last, device)
    dev, amp, channels_last = path.device, path.amp, path.channels_last
    seed = int(settings.seed)
    generator = seed_everything(seed)
    augment = CachedAugment.from_settings(settings)
    multiclass = task == "multiclass"
    if multiclass and augment.mix_p > 0 and augment.mix_mode == "max":
        raise ConfigError(f"config key 'models/{settings.name}/sample_mix_mode': max combines "
                          "labels by their union, which a multiclass task cannot hold. Fix: "
                          "use sample_mix_mode mean (class distributions averaged).")
    image_shape = augment.image_shape(train_x.shape[1:])
    width = training_width(settings.time_resize, image_shape[2])
    train_bg, val_bg = augment.background(train_x, dev), augment.background(val_x, dev)
    # on an accelerator the stacks move to the device once (else pinned host memory)
    train_x, val_x, train_y, val_y = (path.place(t) for t in (train_x, val_x, train_y, val_y))
    train_meta, val_meta = path.place(train_meta), path.place(val_meta)
    n_meta = 0 if train_meta is None else int(train_meta.shape[1])
    model = create_model(settings, image_shape, train_y.shape[1], n_meta).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(settings.lr),
                                  weight_decay=float(settings.weight_decay))
    # ema_decay: validation, the kept weights and predictions use the weights' running average
    ema = WeightAverage(model, float(settings.ema_decay)) if settings.ema_decay else None
    scored = model if ema is None else ema.model
    loss_fn = make_loss(settings, task)
    epochs = int(settings.epochs)
    validate_every = int(settings.validate_every)
    batch_size = int(settings.batch_size)
    steps_per_epoch = len(_batches(batch_size, torch.arange(len(train_x))))
    total_steps = epochs * steps_per_epoch
    warmup_steps = int(round(float(settings.warmup_epochs) * steps_per_epoch))

    history: list[dict[str, float]] = []
    best_state, best_epoch, best_val = clone_state(model), -1, math.inf
    snapshots: list[dict[str, torch.Tensor]] = []  # average_last_epochs' epochs so far
    first_epoch, resumed = 0, None
    ckpt_path = Path(checkpoint) if checkpoint else None
    fingerprint = dict(fingerprint or {})
    state = matching_state(ckpt_path, fingerprint, label)
    if state is not None:
        restore_state(state, model, optimizer, generator, dev)
        if ema is not None:
            ema.load_state_dict(state["ema"])
        history, best_state = state["history"], state["best_state"]
        best_epoch, best_val = state["best_epoch"], state["best_val"]
        snapshots = list(state.get("snapshots") or [])
        first_epoch = resumed = state["epoch"] + 1
        log.info("%s: resumed from the checkpoint after epoch %d", label, state["epoch"] + 1)

    kill_after = os.environ.get(STOP_AFTER_EPOCH_ENV)  # a save, then SIGKILL (tests)
    saved_at = time.time()
    for epoch in range(first_epoch, epochs):
        model.train()
        t0 = time.time()
        order = torch.randperm(len(train_x), generator=generator)
        batches = _batches(batch_size, order)
        running, seen = 0.0, 0
        bar = _progress(len(batches), f"{label} epoch {epoch + 1}/{epochs}")
        for i, idx in enumerate(batches):
            step = epoch * steps_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, float(settings.lr), warmup_steps, total_steps,
                                    int(settings.lr_cycles))
            xb = train_x[idx.to(train_x.device)].to(dev, non_blocking=True).float()
            yb = train_y[idx.to(train_y.device)].to(dev, non_blocking=True)
            aug_gen = batch_generator(generator, dev) if augment.active else None
            if aug_gen is not None or augment.reshapes:
                xb = augment.view(xb, None if train_bg is None else train_bg[idx.to(dev)],
                                  aug_gen)
            if settings.time_resize:
                lo, hi = settings.time_resize
                xb = resize_time(xb, random_time_width(lo, hi, generator))
            elif xb.shape[-1] != width:
                xb = resize_time(xb, width)
            if settings.time_warp:
                xb = time_warp(xb, settings.time_warp, generator)
            mb = None if train_meta is None else train_meta[idx.to(train_meta.device)].to(dev)
            if aug_gen is not None:
                xb, yb, mb = augment.mix(xb, yb, mb, aug_gen, multiclass)
            xb, yb, mb, _ = mixup_with_meta(xb, yb, mb, float(settings.mixup_p), generator,
                                            multiclass=multiclass)
            xb = path.memory_format(xb)
            with path.autocast():
                out = model.forward_heads(xb, mb)
                loss = loss_fn(out["logits"], yb)
                if "frame_logits" in out:
                    loss = loss + 0.5 * sed_frame_loss(loss_fn, out["frame_logits"], yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), float(settings.grad_clip))
            optimizer.step()
            if ema is not None:
                ema.update(model)
            running += float(loss.detach()) * len(idx)
            seen += len(idx)
            bar.update(1)
        bar.close()
        train_seconds = time.time() - t0
        if settings.precise_bn:
            recalibrate_batch_norm(scored, train_x, width, 2 * batch_size, dev, channels_last,
                                   train_meta, augment, train_bg)
        # validate_every: every k-th epoch and the last (the others' val_loss is NaN)
        val_loss = (evaluate(scored, val_x, val_y, width, 2 * batch_size, task, dev, amp,
                             channels_last, val_meta, augment, val_bg)
                    if (epoch + 1) % validate_every == 0 or epoch + 1 == epochs else math.nan)
        row = {"epoch": epoch + 1, "train_loss": running / max(seen, 1), "val_loss": val_loss,
               "lr": optimizer.param_groups[0]["lr"], "seconds": time.time() - t0,
               "samples_per_s": seen / max(train_seconds, 1e-9)}
        history.append(row)
        if val_loss < best_val:
            best_val, best_epoch, best_state = val_loss, epoch + 1, clone_state(scored)
        if n_average and epoch >= epochs - n_average:
            snapshots.append(clone_state(scored))
        log.info("%s epoch %d/%d: train loss %.4f, %s%s, %.1f samples/s", label,
                 epoch + 1, epochs, row["train_loss"],
                 "not validated" if math.isnan(val_loss) else f"val loss {val_loss:.4f}",
                 " (best)" if best_epoch == epoch + 1 else "", row["samples_per_s"])
        kill_now = kill_after is not None and epoch + 1 == int(kill_after)
        if ckpt_path and (kill_now or time.time() - saved_at >= checkpoint_interval_s):
            saved_at = time.time()
            save_torch(ckpt_path, training_state(
                fingerprint=fingerprint, epoch=epoch, model=model, optimizer=optimizer,
                generator=generator, device=dev, history=history, best_state=best_state,
                best_epoch=best_epoch, best_val=best_val,
                ema=None if ema is None else ema.state_dict(),
                snapshots=snapshots if n_average else None))
        if ckpt_path:
            # what `spectrovision status` reads: epoch k of n and the measured epoch times
            write_json(ckpt_path.parent / PROGRESS_FILE, progress_record(
                epoch + 1, epochs, [row["seconds"] for row in history]))
        if kill_now:
            os.kill(os.getpid(), signal.SIGKILL)
    averaged_val = None
    if settings.keep_weights == "best_val":
        kept_state, kept_epoch = best_state, best_epoch
    elif n_average:
        averaged = copy.deepcopy(scored)
        averaged.load_state_dict(average_states(snapshots))
        recalibrate_batch_norm(averaged, train_x, width, 2 * batch_size, dev, channels_last,
                               train_meta, augment, train_bg)
        averaged_val = evaluate(averaged, val_x, val_y, width, 2 * batch_size, task, dev, amp,
                                channels_last, val_meta, augment, val_bg)
        log.info("%s: the mean of the last %d epochs' weights: val loss %.4f", label,
                 n_average, averaged_val)
        kept_state, kept_epoch = clone_state(averaged), len(history)
    else:
        kept_state, kept_epoch = clone_state(scored), len(history)
    return TrainResult(kept_state, history, kept_epoch, best_epoch, best_val, resumed,
                       time.time() - started, model_summary(model), averaged_val)
