"""Grad-CAM++ maps of a trained model: which m/z x time cells drive a label's logit.

The CAM library (``pytorch_grad_cam.GradCAMPlusPlus``) sees :class:`LogitModel`, which
resizes a rendered image along time to the model's training width and returns its
logits; the class-activation map comes from the backbone's last 4-d stage (found by
:func:`find_target_layer`, whatever the timm family) and is resized back to the render's
shape ``(n_mass, n_x)``, min-max scaled to [0, 1] per map.

Samples shown: for each label, the first ``samples_per_label`` samples (by id) of the
model's held-out fold that carry the label (the model never trained on them), with the
map of that label drawn over the rendered intensity image.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import InputError
from ..learn.augment import CachedAugment, resize_time
from ..learn.settings import as_settings
from ..render.axes import RenderAxes
from .settings import ExplainSettings

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


class LogitModel(nn.Module):
    """A trained SpectroNet behind a time resize: image at any width in, logits out."""

    def __init__(self, model: nn.Module, width: int) -> None:
        super().__init__()
        self.model = model
        self.width = int(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(resize_time(x, self.width))


def find_target_layer(model: nn.Module, image_shape: Sequence[int]) -> nn.Module:
    """The backbone's last module (in call order) whose output is 4-d with the spatial size
    of ``model.feature_map``: the last convolutional stage, for any timm CNN family."""
    seen: list[tuple[nn.Module, tuple[int, ...]]] = []
    hooks = [module.register_forward_hook(
        lambda mod, _inp, out: seen.append((mod, tuple(out.shape)))
        if isinstance(out, torch.Tensor) else None)
        for module in model.backbone.modules()
        if module is not model.backbone and not isinstance(module, nn.Identity)]
    try:
        with torch.no_grad():
            fmap = model.feature_map(torch.zeros(1, *image_shape))
    finally:
        for hook in hooks:
            hook.remove()
    for module, shape in reversed(seen):
        if len(shape) == 4 and shape[2:] == tuple(fmap.shape[2:]):
            return module
    raise ValueError("the backbone has no module with a 4-d output of the feature map's size")


def class_probabilities(logits: np.ndarray, task: str) -> np.ndarray:
    """Probabilities as the pipeline reads logits: softmax (multiclass) or sigmoid."""
    x = np.asarray(logits, dtype=np.float64)
    if task == "multiclass":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-x))


def gradcam_maps(model: nn.Module, images: torch.Tensor, label_index: Sequence[int],
                 width: int) -> np.ndarray:
    """Grad-CAM++ map of label ``label_index[i]`` for image ``i``: ``(N, n_mass, n_x)`` in
    [0, 1] (each map min-max scaled; an all-zero map stays zero)."""
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if getattr(model, "meta_branch", None) is not None:
        raise ValueError("Grad-CAM of a model with a metadata branch is not supported")
    model.eval()
    layer = find_target_layer(model, tuple(images.shape[1:2]) + (images.shape[2], width))
    wrapped = LogitModel(model, width).eval()
    with GradCAMPlusPlus(model=wrapped, target_layers=[layer]) as cam:
        maps = cam(input_tensor=images.float(),
                   targets=[ClassifierOutputTarget(int(j)) for j in label_index])
    return np.clip(np.asarray(maps, dtype=np.float32), 0.0, 1.0)


def choose_examples(label_table: pd.DataFrame, candidates: Sequence[str],
                    labels: Sequence[str], samples_per_label: int) -> list[tuple[str, str]]:
    """(sample_id, label) pairs: per label, the first ``samples_per_label`` candidates (by
    id) that carry it."""
    pool = sorted(s for s in map(str, candidates) if s in label_table.index)
    pairs = []
    for label in labels:
        positive = [s for s in pool if label_table.at[s, label] == 1]
        pairs += [(s, label) for s in positive[:samples_per_label]]
    return pairs


def gradcam_figure(images: np.ndarray, maps: np.ndarray, titles: Sequence[str], *,
                   log_mode: str, axes: RenderAxes, n_cols: int, title: str = "") -> Any:
    """Channel 0 of each image (grey, the report's intensity scale) with its map over it
    (jet, alpha 0.45) on the representation's ``axes`` (m/z up, its time, temperature or
    scaled x across)."""
    import matplotlib.pyplot as plt

    from ..report.figures import intensity_norm

    if len(images) == 0:
        raise ValueError("gradcam_figure needs at least one image")
    planes = np.asarray(images[:, 0], dtype=np.float32)
    axes.check_shape(planes.shape)
    n = len(planes)
    cols = max(1, min(n_cols, n))
    fig, grid = plt.subplots(-(-n // cols), cols, squeeze=False, constrained_layout=True,
                             figsize=(3.6 * cols, 2.9 * -(-n // cols)))
    norm = intensity_norm(planes, log_mode)
    shown = None
    for ax, plane, cam, text in zip(grid.flat, planes, maps, titles):
        ax.imshow(plane, origin=axes.origin, aspect="auto", norm=norm, cmap="gray",
                  extent=axes.extent, interpolation="nearest")
        shown = ax.imshow(cam, origin=axes.origin, aspect="auto", cmap="jet", alpha=0.45,
                          vmin=0.0, vmax=1.0, extent=axes.extent, interpolation="bilinear")
        ax.set_title(text, fontsize=8)
        ax.set_xlabel(axes.x_label)
        ax.set_ylabel(axes.y_label)
    for ax in list(grid.flat)[n:]:
        ax.axis("off")
    if shown is not None:
        fig.colorbar(shown, ax=grid, label="Grad-CAM++ (scaled 0-1)", shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def peak_cell(cam: np.ndarray, axes: RenderAxes) -> dict[str, float]:
    """A map's maximum: ``peak_mz`` (the m/z of its row), ``peak_x`` (its column centre in
    the axes' x units: degC / time on a fixed window, 0-1 per run otherwise) and
    ``peak_x_fraction`` (that centre as a fraction of the render's width)."""
    axes.check_shape(cam.shape)
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return {"peak_mz": axes.mass_at(row), "peak_x": axes.x_at(col),
            "peak_x_fraction": float((col + 0.5) / cam.shape[1])}


def run_explain(*, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                settings: ExplainSettings | Mapping[str, Any], label_table: pd.DataFrame,
                log_mode: str, axes: RenderAxes | Mapping[str, Any],
                threads: int = 1) -> dict[str, Any]:
    """Write ``outputs['figure']`` (PNG grid: labels down, samples across) and
    ``outputs['table']`` (CSV: sample_id, label, truth, prob, peak_mz, peak_x,
    peak_x_fraction; see :func:`peak_cell`).

    ``inputs``: ``weights`` (model.pt), ``stacks``/``stack_ids`` (the model's stacked
    renders) and ``folds``; ``settings``: the ``explain:`` block; ``log_mode``/``axes``
    (a :class:`RenderAxes` or its ``as_dict``): how the representation's renders are
    drawn."""
    import matplotlib.pyplot as plt

    from ..data.folds import fold_split, read_folds
    from ..io import save_figure, write_csv
    from ..learn.checkpoint import load_trained
    from ..learn.imageset import load_image_set

    render_axes = RenderAxes.of(axes)
    chosen_settings = as_settings(ExplainSettings, settings, "explain")
    samples_per_label = chosen_settings.samples_per_label
    weights, folds_path = inputs["weights"], inputs["folds"]
    torch.set_num_threads(max(int(threads), 1))
    model, bundle = load_trained(weights)
    all_labels = list(bundle["labels"])
    chosen = list(chosen_settings.labels) if chosen_settings.labels else all_labels
    unknown = sorted(set(chosen) - set(all_labels))
    if unknown:
        raise InputError(weights, f"labels {unknown} are not among the model's {all_labels}",
                         "fix explain.labels in the config (null = all labels)")
    folds = read_folds(folds_path)
    _, held_out = fold_split(folds, int(bundle["fold"]))
    pairs = choose_examples(label_table, held_out, chosen, samples_per_label)
    if not pairs:
        raise InputError(folds_path, f"no held-out sample of fold {bundle['fold']} carries "
                         f"any of the labels {chosen}", "pick another explain.fold or labels")
    images = load_image_set(inputs["stacks"], inputs["stack_ids"], keep={s for s, _ in pairs})
    x = images.select([s for s, _ in pairs]).float()
    render_axes.check_shape(tuple(x.shape))
    # what the model sees at evaluation: centre columns of a strided render (drawn over the
    # same x extent) and the mean background mix subtracted
    x = CachedAugment.from_settings(bundle["settings"]).evaluation_images(x)
    render_axes = replace(render_axes, n_x=int(x.shape[-1]))
    index = [all_labels.index(label) for _, label in pairs]
    width = int(bundle["train_width"])
    with torch.no_grad():
        logits = LogitModel(model, width)(x).numpy()
    probs = class_probabilities(logits, bundle["task"])
    prob = probs[np.arange(len(pairs)), index]
    maps = gradcam_maps(model, x, index, width)
    titles = [f"{s} | {label} | p={p:.2f}" for (s, label), p in zip(pairs, prob)]
    trained = bundle["settings"]
    fig = gradcam_figure(x.numpy(), maps, titles, log_mode=log_mode, axes=render_axes,
                         n_cols=max(samples_per_label, 1),
                         title=f"Grad-CAM++: {trained.name} fold "
                               f"{bundle['fold']} ({trained.backbone})")
    save_figure(outputs["figure"], fig, dpi=100)
    plt.close(fig)
    peaks = pd.DataFrame([peak_cell(m, render_axes) for m in maps])
    table = pd.concat([pd.DataFrame({"sample_id": [s for s, _ in pairs],
                                     "label": [label for _, label in pairs],
                                     "truth": [int(label_table.at[s, label])
                                               for s, label in pairs],
                                     "prob": prob}), peaks], axis=1)
    write_csv(outputs["table"], table)
    log.info("Grad-CAM++ of %d sample x label pairs", len(pairs))
    return {"n_maps": len(pairs), "fold": int(bundle["fold"]), "width": width}
