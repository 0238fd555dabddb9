"""Train one model on one fold and write its weights bundle, metrics, history and curve.

Fold ``k`` trains on every labelled sample whose fold is not ``k`` (``-1`` = always train)
and validates on fold ``k``. With ``n_seeds`` > 1 the fold trains that many times, seeds
``seed`` ... ``seed + n - 1``, one after the other in this one job (each with its own
checkpoint, :func:`seed_checkpoint`), and the bundle keeps every seed's weights
(:class:`~spectrovision.learn.models.SeedAverage`: predictions are the mean of their
logits). The images come from :mod:`~spectrovision.learn.imageset`,
the loop from :mod:`~spectrovision.learn.loop`, the files it leaves from
:mod:`~spectrovision.learn.checkpoint`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..config.typed import as_dict
from ..data.metadata import Standardizer, metadata_values
from ..errors import InputError
from .augment import CachedAugment, training_width
from .checkpoint import run_fingerprint, save_weights
from .imageset import label_tensor, open_stacks
from .loop import TrainResult, train_model
from .models import create_model, seed_average_state
from .settings import ModelSettings, model_settings

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def curve_figure(history: pd.DataFrame, title: str, kept_epoch: int | None = None) -> Any:
    """Training and validation loss per epoch (validation: the validated epochs,
    ``validate_every``); the best validation epoch circled and, when given, the kept epoch
    (``keep_weights``) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    if "seed" in history:  # n_seeds: one pair of curves per seed, the first seed marked
        for seed, rows in history.groupby("seed", sort=False):
            ax.plot(rows["epoch"], rows["train_loss"], marker=".", alpha=0.6,
                    label=f"train, seed {seed}")
            val = rows.dropna(subset=["val_loss"])  # validate_every: validated epochs only
            ax.plot(val["epoch"], val["val_loss"], marker="o", label=f"validation, seed {seed}")
        history = history.loc[history["seed"] == history["seed"].iloc[0]]
    else:
        ax.plot(history["epoch"], history["train_loss"], marker="o", label="train (with recipe)")
        val = history.dropna(subset=["val_loss"])
        ax.plot(val["epoch"], val["val_loss"], marker="o", label="validation log loss")
    best = history.loc[history["val_loss"].idxmin()]
    ax.scatter([best["epoch"]], [best["val_loss"]], s=120, facecolors="none",
               edgecolors="k", label=f"best (epoch {int(best['epoch'])})")
    if kept_epoch is not None:
        kept = history.loc[history["epoch"] == kept_epoch]
        ax.scatter(kept["epoch"], kept["val_loss"], marker="x", s=80, color="C3", zorder=3,
                   label=f"kept weights (epoch {kept_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def run_train(*, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
              settings: ModelSettings | Mapping[str, Any], fold: int, task: str,
              label_table: pd.DataFrame, labels: Sequence[str], checkpoint: PathLike,
              threads: int = 1, metadata: pd.DataFrame | None = None,
              code: str | None = None) -> dict[str, Any]:
    """Train one model x fold and write ``outputs`` ``weights``, ``metrics``, ``history``,
    ``curve``. A checkpoint resumes only when the settings, fold, label values, input
    renders (content) and ``code`` (the rule's code version) that wrote it are the same.

    ``inputs``: ``stacks`` and ``stack_ids`` (the model's stacked renders of every split and
    their id CSVs) and ``folds`` (folds.csv). ``settings``: the model's resolved settings
    (a plain dict, as the train rule's params, or :class:`ModelSettings`). A model with
    ``metadata_columns`` reads them from ``metadata`` (the sample sheet), standardised with
    the training rows' statistics (stored in the weights bundle)."""
    import matplotlib.pyplot as plt

    from ..data.folds import fold_split, read_folds
    from ..io import save_figure, write_csv, write_json
    from .lease import lease_device

    typed = model_settings(settings)
    torch.set_num_threads(max(int(threads), 1))
    folds = read_folds(inputs["folds"])
    train_ids, val_ids = fold_split(folds, fold)
    stacks = open_stacks(inputs["stacks"], inputs["stack_ids"])  # read into what training keeps
    train_x, val_x = stacks.select(train_ids), stacks.select(val_ids)
    train_y = label_tensor(label_table, train_ids, labels)
    val_y = label_tensor(label_table, val_ids, labels)
    name = f"{typed.name}/fold{fold}"
    scaler, train_meta, val_meta = fold_metadata(metadata, typed, train_ids, val_ids)
    extra = {"task": task, "labels": list(labels), "shape": list(train_x.shape[1:])}
    if scaler is not None:
        extra["metadata"] = scaler.to_bundle()
    tensors = {"renders_train": train_x, "renders_val": val_x, "labels_train": train_y,
               "labels_val": val_y}
    shape = CachedAugment.from_settings(typed).image_shape(train_x.shape[1:])  # scan_stride
    width = training_width(typed.time_resize, shape[2])
    runs = seed_settings(typed)
    seed_losses: list[float] = []
    with lease_device() as lease:
        if lease.device == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        log.info("%s: %d training, %d validation samples, images %s, device %s", name,
                 len(train_ids), len(val_ids), tuple(train_x.shape[1:]), lease.device)
        results = [train_model(train_x, train_y, val_x, val_y, run, task,
                               checkpoint=seed_checkpoint(checkpoint, k), device=lease.device,
                               fingerprint=run_fingerprint(run, fold, train_ids, extra,
                                                           code=code, tensors=tensors),
                               label=name if len(runs) == 1 else f"{name}/seed{run.seed}",
                               train_meta=train_meta, val_meta=val_meta)
                   for k, run in enumerate(runs)]
        if len(runs) > 1:
            seed_losses = seed_average_losses(results, typed, shape, width, task, val_x,
                                              val_y, val_meta, lease.device)
    result = results[0]
    if len(runs) == 1:
        history = pd.DataFrame(result.history)
        state_dict = result.state_dict
    else:
        history = pd.concat([pd.DataFrame(r.history).assign(seed=run.seed)
                             for r, run in zip(results, runs)], ignore_index=True)
        history = history[["seed", *history.columns.drop("seed")]]
        state_dict = seed_average_state([r.state_dict for r in results])
    # the settings as given (a rule's dict keeps its key order), else the dataclass's
    stored = dict(settings) if isinstance(settings, Mapping) else as_dict(typed)
    save_weights(outputs["weights"], state_dict=state_dict, settings=stored, task=task,
                 labels=labels, image_shape=shape, train_width=width,
                 fold=fold, n_meta=0 if train_meta is None else int(train_meta.shape[1]),
                 scaler=scaler)
    write_csv(outputs["history"], history)
    metrics = {"model": typed.name, "fold": fold, "keep_weights": typed.keep_weights,
               "kept_epoch": result.kept_epoch, "best_epoch": result.best_epoch,
               "best_val_loss": result.best_val_loss, "epochs": len(result.history),
               "n_train": len(train_ids), "n_val": len(val_ids), "train_width": width,
               "seconds": sum(r.seconds for r in results), "device": lease.device,
               "mean_samples_per_s": float(history["samples_per_s"].mean()),
               "resumed_from_epoch": result.resumed_from_epoch, **result.model_info}
    if typed.average_last_epochs > 1:
        metrics["average_last_epochs"] = int(typed.average_last_epochs)
        metrics["averaged_val_loss"] = result.averaged_val_loss
    if len(runs) > 1:  # the keys above are the first seed's
        metrics.update({"seeds": [run.seed for run in runs],
                        "seed_val_losses": seed_losses[:-1],
                        "seed_average_val_loss": seed_losses[-1]})
    write_json(outputs["metrics"], metrics)
    fig = curve_figure(history, name, result.kept_epoch)
    save_figure(outputs["curve"], fig, dpi=100)
    plt.close(fig)
    for k in range(len(runs)):
        seed_checkpoint(checkpoint, k).unlink(missing_ok=True)
    return metrics


def seed_settings(settings: ModelSettings) -> list[ModelSettings]:
    """The settings each of ``n_seeds`` trainings runs with: ``settings`` itself, then the
    same with seed + 1, ..., seed + n - 1 (a seed's training reads no ``n_seeds``)."""
    return [settings] + [dataclasses.replace(settings, seed=int(settings.seed) + k)
                         for k in range(1, int(settings.n_seeds))]


def seed_checkpoint(checkpoint: PathLike, k: int) -> Path:
    """The training state of the ``k``-th seed (0: ``checkpoint`` itself, else
    ``last.seed{k}.pt`` beside it); a finished seed's stays until the whole job ends, so
    a job killed in a later seed resumes without training the earlier ones again."""
    path = Path(checkpoint)
    return path if k == 0 else path.with_name(f"{path.stem}.seed{k}{path.suffix}")


def seed_average_losses(results: Sequence[TrainResult], settings: ModelSettings,
                        shape: tuple[int, int, int], width: int, task: str,
                        val_x: torch.Tensor, val_y: torch.Tensor,
                        val_meta: torch.Tensor | None, device: str) -> list[float]:
    """The validation log loss of each seed's kept weights and, last, of the mean of
    their logits (the plain view at the training width, as the loop validates)."""
    from .device import device_path
    from .losses import eval_loss
    from .predict import predict_logits

    path = device_path(settings.amp, settings.channels_last, device)
    augment = CachedAugment.from_settings(settings)
    background = augment.background(val_x, device)
    n_meta = 0 if val_meta is None else int(val_meta.shape[1])
    logits = []
    for result in results:
        model = create_model(settings, shape, int(val_y.shape[1]), n_meta)
        model.load_state_dict(result.state_dict)
        logits.append(torch.from_numpy(predict_logits(
            model.to(device), val_x, [width], 2 * int(settings.batch_size), device, path.amp,
            path.channels_last, val_meta, augment, background)))
    logits.append(torch.stack(logits).mean(dim=0))
    return [float(eval_loss(z, val_y.to(z.device), task)) for z in logits]


def fold_metadata(metadata: pd.DataFrame | None, settings: ModelSettings,
                  train_ids: Sequence[str], val_ids: Sequence[str]
                  ) -> tuple[Standardizer | None, torch.Tensor | None, torch.Tensor | None]:
    """The standardiser fitted on the training rows and the standardised training and
    validation metadata of a model with ``metadata_columns`` (all None without)."""
    columns = list(settings.metadata_columns or [])
    if not columns:
        return None, None, None
    if metadata is None:
        raise InputError("sample sheet", f"model '{settings.name}' reads metadata "
                         f"columns {columns} but no sample sheet was passed",
                         "pass the sample sheet (run_train(metadata=...))")
    raw = metadata_values(metadata, train_ids, columns)
    scaler = Standardizer.fit(raw, columns)
    val = metadata_values(metadata, val_ids, columns)
    return (scaler, torch.from_numpy(scaler.transform(raw)),
            torch.from_numpy(scaler.transform(val)))
