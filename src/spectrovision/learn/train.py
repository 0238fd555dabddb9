"""Train one model on one fold: seeded, resumable, one device, best validation loss kept.

The data are the stacked renders of every split (memory-mapped NPY + id CSV), read once
into memory as float16 and turned into float32 batch by batch: the input pipeline is a
tensor index, no worker processes. Fold ``k`` trains on every labelled sample whose fold
is not ``k`` (``-1`` = always train) and validates on fold ``k``.

Resuming: after every epoch the whole training state (weights, optimiser, RNG states,
history, best weights so far) goes to ``checkpoint`` (outside the job's declared
outputs, so Snakemake does not delete it when a job is killed). A re-started job with the
same settings continues from there and, on the CPU, ends with the same weights as an
uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .augment import mixup_with_meta, random_time_width, resize_time, time_warp, training_width
from ..errors import InputError
from .losses import eval_loss, make_loss, sed_frame_loss
from ..data.metadata import Standardizer, metadata_values
from .models import create_model, model_summary

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]
STOP_AFTER_EPOCH_ENV = "SPECTROVISION_KILL_AFTER_EPOCH"  # tests: SIGKILL self after epoch k


# --- data ----------------------------------------------------------------------------------

@dataclass
class ImageSet:
    """Images (float16, in memory) of the samples ``ids``, in that order."""

    ids: list[str]
    images: torch.Tensor  # (N, C, mass, time)

    def select(self, wanted: Sequence[str]) -> torch.Tensor:
        index = {s: i for i, s in enumerate(self.ids)}
        missing = [s for s in wanted if s not in index]
        if missing:
            raise InputError("render stacks", f"{len(missing)} samples have no image, e.g. "
                             f"{missing[:5]}", "re-run the render rules for this representation")
        return self.images[torch.as_tensor([index[s] for s in wanted], dtype=torch.long)]


def load_image_set(stacks: Sequence[PathLike], stack_ids: Sequence[PathLike],
                   keep: set[str] | None = None) -> ImageSet:
    """Read stacked renders (+ their id CSVs), keeping only ``keep`` when given."""
    ids: list[str] = []
    blocks: list[np.ndarray] = []
    for stack_path, csv_path in zip(stacks, stack_ids, strict=True):
        listed = pd.read_csv(csv_path, dtype={"sample_id": str})["sample_id"].tolist()
        stack = np.load(stack_path, mmap_mode="r")
        if len(listed) != stack.shape[0]:
            raise InputError(csv_path, f"lists {len(listed)} samples but {Path(stack_path).name}"
                             f" holds {stack.shape[0]} images", "re-run the render stack rule")
        rows = [i for i, s in enumerate(listed) if keep is None or s in keep]
        if rows:
            blocks.append(np.asarray(stack[rows], dtype=np.float16))
            ids += [listed[i] for i in rows]
    if not blocks:
        raise InputError(stacks[0] if stacks else "render stacks", "no images to read",
                         "check the folds and the render stacks")
    return ImageSet(ids, torch.from_numpy(np.concatenate(blocks)))


def label_tensor(label_table: pd.DataFrame, ids: Sequence[str],
                 labels: Sequence[str]) -> torch.Tensor:
    missing = [s for s in ids if s not in label_table.index]
    if missing:
        raise InputError("label files", f"no labels for {missing[:5]}",
                         "re-run the folds rule: folds.csv must list labelled samples only")
    y = np.array(label_table.loc[list(ids), list(labels)], dtype=np.float32)
    if np.isnan(y).any():
        raise InputError("label files", "a training sample has an empty label",
                         "fill every label with 0 or 1")
    return torch.from_numpy(y)


# --- schedule, seeds, device ---------------------------------------------------------------

def lr_at(step: int, peak: float, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up to ``peak`` over ``warmup_steps``, then cosine decay to 0."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    return peak * 0.5 * (1 + math.cos(math.pi * min(step - warmup_steps, span) / span))


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed + 1)


def settings_fingerprint(settings: Mapping[str, Any], fold: int, train_ids: Sequence[str],
                         extra: Mapping[str, Any] | None = None) -> str:
    """A hash of what determines the training run (a checkpoint resumes only if it matches)."""
    text = json.dumps({"settings": settings, "fold": fold, "train": list(train_ids),
                       "extra": extra or {}}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- the loop ------------------------------------------------------------------------------

@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    resumed_from_epoch: int | None
    seconds: float
    model_info: dict[str, int] = field(default_factory=dict)


def _batches(batch_size: int, order: torch.Tensor) -> list[torch.Tensor]:
    """Mini-batches of ``order``; a last batch of one sample joins the previous one
    (batch norm cannot train on a single sample)."""
    chunks = list(order.split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < 2:
        chunks[-2] = torch.cat([chunks[-2], chunks.pop()])
    return chunks


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not sys.stderr.isatty())


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, width: int, batch_size: int,
             task: str, device: torch.device, amp: bool, channels_last: bool,
             meta: torch.Tensor | None = None) -> float:
    """Mean validation log loss at the training width (``meta``: standardised metadata)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = _to_device(x[start:start + batch_size], device, channels_last)
            yb = y[start:start + batch_size].to(device)
            mb = None if meta is None else meta[start:start + batch_size].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(resize_time(xb, width), mb)
            total += float(eval_loss(logits, yb, task)) * len(xb)
            count += len(xb)
    return total / max(count, 1)


def recalibrate_batch_norm(model: nn.Module, x: torch.Tensor, width: int, batch_size: int,
                           device: torch.device, channels_last: bool,
                           meta: torch.Tensor | None = None) -> None:
    """Re-estimate every batch-norm layer's running mean and variance as the plain average
    over one pass of ``x`` (in order, at the training width, no gradient; dropout stays
    off, no random numbers are drawn). Short runs on small data sets otherwise validate
    with running statistics that lag far behind the weights (eval mode near chance while
    train mode is right); setting ``precise_bn``."""
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
            xb = _to_device(x[start:start + batch_size], device, channels_last)
            mb = None if meta is None else meta[start:start + batch_size].to(device)
            model(resize_time(xb, width), mb)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train(was_training)


def cuda_options(settings: Mapping[str, Any], device: str) -> tuple[bool, bool]:
    """``(amp, channels_last)`` as the model's settings ask, both off unless on CUDA."""
    on_cuda = torch.device(device).type == "cuda"
    return (bool(settings.get("amp", True)) and on_cuda,
            bool(settings.get("channels_last", True)) and on_cuda)


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True).float()
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def train_model(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor,
                val_y: torch.Tensor, settings: Mapping[str, Any], task: str, *,
                checkpoint: PathLike | None = None, device: str = "cpu",
                fingerprint: str = "", label: str = "", train_meta: torch.Tensor | None = None,
                val_meta: torch.Tensor | None = None) -> TrainResult:
    """Train with the model's recipe; return the best-validation-loss weights and history.
    ``train_meta``/``val_meta``: standardised metadata rows for a fused model (else None)."""
    started = time.time()
    dev = torch.device(device)
    on_cuda = dev.type == "cuda"
    amp, channels_last = cuda_options(settings, device)
    seed = int(settings["seed"])
    generator = seed_everything(seed)
    n_x = train_x.shape[-1]
    width = training_width(settings.get("time_resize"), n_x)
    n_meta = 0 if train_meta is None else int(train_meta.shape[1])
    model = create_model(settings, tuple(train_x.shape[1:]), train_y.shape[1], n_meta).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(settings["lr"]),
                                  weight_decay=float(settings.get("weight_decay", 0.01)))
    loss_fn = make_loss(settings, task)
    epochs = int(settings["epochs"])
    batch_size = int(settings["batch_size"])
    steps_per_epoch = len(_batches(batch_size, torch.arange(len(train_x))))
    total_steps = epochs * steps_per_epoch
    warmup_steps = int(round(float(settings.get("warmup_epochs", 0)) * steps_per_epoch))

    history: list[dict[str, float]] = []
    best_state, best_epoch, best_val = _clone_state(model), -1, math.inf
    first_epoch, resumed = 0, None
    ckpt_path = Path(checkpoint) if checkpoint else None
    if ckpt_path and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            generator.set_state(state["generator"])
            random.setstate(state["python_rng"])
            np.random.set_state(state["numpy_rng"])
            if on_cuda and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], dev)
            history, best_state = state["history"], state["best_state"]
            best_epoch, best_val = state["best_epoch"], state["best_val"]
            first_epoch = resumed = state["epoch"] + 1
            log.info("%s: resumed from the checkpoint after epoch %d", label, state["epoch"] + 1)
        else:
            log.info("%s: checkpoint %s is from other settings; starting over", label, ckpt_path)

    kill_after = os.environ.get(STOP_AFTER_EPOCH_ENV)
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
                group["lr"] = lr_at(step, float(settings["lr"]), warmup_steps, total_steps)
            xb = train_x[idx].to(dev, non_blocking=True).float()
            yb = train_y[idx].to(dev)
            if settings.get("time_resize"):
                lo, hi = settings["time_resize"]
                xb = resize_time(xb, random_time_width(lo, hi, generator))
            elif xb.shape[-1] != width:
                xb = resize_time(xb, width)
            if settings.get("time_warp"):
                xb = time_warp(xb, settings["time_warp"], generator)
            mb = None if train_meta is None else train_meta[idx].to(dev)
            xb, yb, mb, _ = mixup_with_meta(xb, yb, mb, float(settings.get("mixup_p", 0.0)),
                                            generator, multiclass=task == "multiclass")
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                out = model.forward_heads(xb, mb)
                loss = loss_fn(out["logits"], yb)
                if "frame_logits" in out:
                    loss = loss + 0.5 * sed_frame_loss(loss_fn, out["frame_logits"], yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.get("grad_clip"):
                nn.utils.clip_grad_norm_(model.parameters(), float(settings["grad_clip"]))
            optimizer.step()
            running += float(loss.detach()) * len(idx)
            seen += len(idx)
            bar.update(1)
        bar.close()
        train_seconds = time.time() - t0
        if settings.get("precise_bn"):
            recalibrate_batch_norm(model, train_x, width, 2 * batch_size, dev, channels_last,
                                   train_meta)
        val_loss = evaluate(model, val_x, val_y, width, 2 * batch_size, task, dev, amp,
                            channels_last, val_meta)
        row = {"epoch": epoch + 1, "train_loss": running / max(seen, 1), "val_loss": val_loss,
               "lr": optimizer.param_groups[0]["lr"], "seconds": time.time() - t0,
               "samples_per_s": seen / max(train_seconds, 1e-9)}
        history.append(row)
        if val_loss < best_val:
            best_val, best_epoch, best_state = val_loss, epoch + 1, _clone_state(model)
        log.info("%s epoch %d/%d: train loss %.4f, val loss %.4f%s, %.1f samples/s", label,
                 epoch + 1, epochs, row["train_loss"], val_loss,
                 " (best)" if best_epoch == epoch + 1 else "", row["samples_per_s"])
        if ckpt_path:
            _save_checkpoint(ckpt_path, {
                "fingerprint": fingerprint, "epoch": epoch, "model": _clone_state(model),
                "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                "generator": generator.get_state(), "python_rng": random.getstate(),
                "numpy_rng": np.random.get_state(),
                "cuda_rng": torch.cuda.get_rng_state(dev) if on_cuda else None,
                "history": history, "best_state": best_state, "best_epoch": best_epoch,
                "best_val": best_val})
        if kill_after is not None and epoch + 1 == int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)
    return TrainResult(best_state, history, best_epoch, best_val, resumed,
                       time.time() - started, model_summary(model))


# --- plots and the file-level entry point --------------------------------------------------

def curve_figure(history: pd.DataFrame, title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(history["epoch"], history["train_loss"], marker="o", label="train (with recipe)")
    ax.plot(history["epoch"], history["val_loss"], marker="o", label="validation log loss")
    best = history.loc[history["val_loss"].idxmin()]
    ax.scatter([best["epoch"]], [best["val_loss"]], s=120, facecolors="none",
               edgecolors="k", label=f"best (epoch {int(best['epoch'])})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def run_train(stacks: Sequence[PathLike], stack_ids: Sequence[PathLike], folds_path: PathLike,
              label_table: pd.DataFrame, labels: Sequence[str], settings: Mapping[str, Any],
              fold: int, task: str, outputs: Mapping[str, PathLike], *,
              checkpoint: PathLike, threads: int = 1,
              metadata: pd.DataFrame | None = None) -> dict[str, Any]:
    """Train one model x fold and write ``weights``, ``metrics``, ``history``, ``curve``.

    A model with ``metadata_columns`` reads them from ``metadata`` (the sample sheet),
    standardised with the training rows' statistics (stored in the weights bundle)."""
    import matplotlib.pyplot as plt

    from ..data.folds import fold_split
    from ..io import atomic_path, save_figure, write_csv, write_json
    from .lease import lease_device

    torch.set_num_threads(max(int(threads), 1))
    folds = pd.read_csv(folds_path, dtype={"sample_id": str})
    train_ids, val_ids = fold_split(folds, fold)
    images = load_image_set(stacks, stack_ids, keep=set(train_ids) | set(val_ids))
    train_x, val_x = images.select(train_ids), images.select(val_ids)
    train_y = label_tensor(label_table, train_ids, labels)
    val_y = label_tensor(label_table, val_ids, labels)
    name = f"{settings.get('name', 'model')}/fold{fold}"
    scaler, train_meta, val_meta = fold_metadata(metadata, settings, train_ids, val_ids)
    extra = {"task": task, "labels": list(labels), "shape": list(train_x.shape[1:])}
    if scaler is not None:
        extra["metadata"] = scaler.to_bundle()
    fingerprint = settings_fingerprint(settings, fold, train_ids, extra)
    with lease_device() as lease:
        if lease.device == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        log.info("%s: %d training, %d validation samples, images %s, device %s", name,
                 len(train_ids), len(val_ids), tuple(train_x.shape[1:]), lease.device)
        result = train_model(train_x, train_y, val_x, val_y, settings, task,
                             checkpoint=checkpoint, device=lease.device,
                             fingerprint=fingerprint, label=name, train_meta=train_meta,
                             val_meta=val_meta)
    history = pd.DataFrame(result.history)
    width = training_width(settings.get("time_resize"), train_x.shape[-1])
    bundle = {"state_dict": result.state_dict, "settings": dict(settings), "task": task,
              "labels": list(labels), "image_shape": tuple(train_x.shape[1:]),
              "train_width": width, "fold": fold,
              "n_meta": 0 if train_meta is None else int(train_meta.shape[1]),
              **(scaler.to_bundle() if scaler is not None else {})}
    with atomic_path(outputs["weights"]) as tmp:
        torch.save(bundle, tmp)
    write_csv(outputs["history"], history)
    metrics = {"model": settings.get("name"), "fold": fold, "best_epoch": result.best_epoch,
               "best_val_loss": result.best_val_loss, "epochs": len(history),
               "n_train": len(train_ids), "n_val": len(val_ids), "train_width": width,
               "seconds": result.seconds, "device": lease.device,
               "mean_samples_per_s": float(history["samples_per_s"].mean()),
               "resumed_from_epoch": result.resumed_from_epoch, **result.model_info}
    write_json(outputs["metrics"], metrics)
    fig = curve_figure(history, name)
    save_figure(outputs["curve"], fig, dpi=100)
    plt.close(fig)
    Path(checkpoint).unlink(missing_ok=True)
    return metrics


def fold_metadata(metadata: pd.DataFrame | None, settings: Mapping[str, Any],
                  train_ids: Sequence[str], val_ids: Sequence[str]
                  ) -> tuple[Standardizer | None, torch.Tensor | None, torch.Tensor | None]:
    """The standardiser fitted on the training rows and the standardised training and
    validation metadata of a model with ``metadata_columns`` (all None without)."""
    columns = list(settings.get("metadata_columns") or [])
    if not columns:
        return None, None, None
    if metadata is None:
        raise InputError("sample sheet", f"model '{settings.get('name')}' reads metadata "
                         f"columns {columns} but no sample sheet was passed",
                         "pass the sample sheet (run_train(metadata=...))")
    raw = metadata_values(metadata, train_ids, columns)
    scaler = Standardizer.fit(raw, columns)
    val = metadata_values(metadata, val_ids, columns)
    return (scaler, torch.from_numpy(scaler.transform(raw)),
            torch.from_numpy(scaler.transform(val)))


def load_trained(path: PathLike, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from its weights file; returns ``(model in eval mode, bundle)``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model weights not found", "re-run the train rule")
    bundle = torch.load(path, map_location="cpu", weights_only=False)
    settings = {**bundle["settings"], "weights": None}  # the trained weights replace them
    model = create_model(settings, tuple(bundle["image_shape"]), len(bundle["labels"]),
                         n_meta=int(bundle.get("n_meta", 0)))
    model.load_state_dict(bundle["state_dict"])
    return model.to(device).eval(), bundle
