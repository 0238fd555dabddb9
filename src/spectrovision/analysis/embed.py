"""A 2-D UMAP of a trained model's penultimate features, for every sample of every split.

Each render is resized along time to the model's training width, passed through
``model.embed`` (what the head's last linear layer sees) and the features of all samples
are mapped to 2-D by UMAP (seeded ``random_state``, ``n_jobs=1``: the same inputs give the
same map). The plot colours labelled samples by their truth for one label (circles) and
unlabelled samples by the model's predicted probability of that label (triangles).
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

from ..errors import InputError
from ..learn.augment import CachedAugment, resize_time
from ..learn.settings import as_settings
from .explain import class_probabilities
from .settings import EmbedSettings

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def penultimate_features(model: nn.Module, images: torch.Tensor, width: int,
                         batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, F), logits (N, L))`` of images resized to ``width`` along time."""
    if getattr(model, "meta_branch", None) is not None:
        raise ValueError("embedding a model with a metadata branch is not supported")
    model.eval()
    feats, logits = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = resize_time(images[start:start + batch_size].float(), width)
            emb = model.embed(x)
            logits.append(model.head(emb)["logits"].numpy())
            feats.append(emb.flatten(1).numpy())
    return np.concatenate(feats).astype(np.float64), np.concatenate(logits).astype(np.float64)


def umap_2d(features: np.ndarray, *, n_neighbors: int, min_dist: float, seed: int
            ) -> np.ndarray:
    """Seeded, single-threaded UMAP to 2-D; ``n_neighbors`` is capped at N - 1."""
    import umap

    n = len(features)
    if n < 3:
        raise ValueError(f"UMAP needs at least 3 samples, got {n}")
    reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(int(n_neighbors), n - 1)),
                        min_dist=float(min_dist), random_state=int(seed), n_jobs=1,
                        init="spectral" if n > 10 else "random")
    return np.asarray(reducer.fit_transform(features), dtype=np.float64)


def embedding_table(ids: Sequence[str], splits: Sequence[str], labelled: Sequence[bool],
                    xy: np.ndarray, truth: Sequence[float], prob: Sequence[float]
                    ) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": list(ids), "split": list(splits),
                         "labelled": np.asarray(labelled, dtype=bool),
                         "x": xy[:, 0], "y": xy[:, 1],
                         "truth": np.asarray(truth, dtype=np.float64),
                         "prob": np.asarray(prob, dtype=np.float64)})


def embedding_plot(table: pd.DataFrame, label: str, title: str = "") -> Any:
    """Labelled samples: circles coloured by truth (0 grey-blue, 1 red); unlabelled:
    triangles coloured by the predicted probability (viridis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.2), constrained_layout=True)
    known = table[table["labelled"]]
    for value, colour in ((0, "tab:blue"), (1, "tab:red")):
        part = known[known["truth"] == value]
        ax.scatter(part["x"], part["y"], c=colour, marker="o", s=18, alpha=0.75,
                   edgecolors="none", label=f"labelled, {label} = {value}")
    unknown = table[~table["labelled"]]
    if len(unknown):
        shown = ax.scatter(unknown["x"], unknown["y"], c=unknown["prob"], cmap="viridis",
                           vmin=0.0, vmax=1.0, marker="^", s=26, edgecolors="k",
                           linewidths=0.3, label="unlabelled (colour = predicted p)")
        fig.colorbar(shown, ax=ax, label=f"predicted p({label})")
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title or f"penultimate features, coloured by {label}", fontsize=10)
    return fig


def run_embed(*, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
              settings: EmbedSettings | Mapping[str, Any], splits: Sequence[str],
              label_table: pd.DataFrame, seed: int, threads: int = 1) -> dict[str, Any]:
    """Write ``outputs['table']`` (parquet: sample_id, split, labelled, x, y, truth, prob of
    the colour label) and ``outputs['plot']`` (PNG).

    ``inputs``: ``weights`` (model.pt) and ``stacks``/``stack_ids``, one per split of
    ``splits`` in that order; ``settings``: the ``embed:`` block; ``seed``: UMAP's
    ``random_state`` (the global seed)."""
    import matplotlib.pyplot as plt

    from ..io import save_figure, write_parquet
    from ..learn.checkpoint import load_trained
    from ..learn.imageset import load_image_set

    umap_settings = as_settings(EmbedSettings, settings, "embed")
    weights, stack_ids = inputs["weights"], inputs["stack_ids"]
    torch.set_num_threads(max(int(threads), 1))
    model, bundle = load_trained(weights)
    labels = list(bundle["labels"])
    label = umap_settings.color_label or labels[0]
    if label not in labels:
        raise InputError(weights, f"embed.color_label '{label}' is not one of {labels}",
                         "fix embed.color_label in the config (null = the first label)")
    ids: list[str] = []
    split_of: list[str] = []
    blocks = []
    for split, stack, csv in zip(splits, inputs["stacks"], stack_ids, strict=True):
        part = load_image_set([stack], [csv])
        ids += part.ids
        split_of += [split] * len(part.ids)
        blocks.append(part.images)
    if len(set(ids)) != len(ids):
        raise InputError(stack_ids[0], "a sample id occurs in more than one split's stack",
                         "re-run the render stack rules")
    # the images as the model sees them at evaluation (centre columns, mean background mix)
    seen = CachedAugment.from_settings(bundle["settings"]).evaluation_images(torch.cat(blocks))
    feats, logits = penultimate_features(model, seen, int(bundle["train_width"]))
    probs = class_probabilities(logits, bundle["task"])[:, labels.index(label)]
    labelled = [s in label_table.index and pd.notna(label_table.at[s, label]) for s in ids]
    truth = [float(label_table.at[s, label]) if known else np.nan
             for s, known in zip(ids, labelled)]
    xy = umap_2d(feats, n_neighbors=umap_settings.n_neighbors,
                 min_dist=umap_settings.min_dist, seed=seed)
    table = embedding_table(ids, split_of, labelled, xy, truth, probs)
    write_parquet(outputs["table"], table)
    fig = embedding_plot(table, label, f"UMAP of {bundle['settings'].name} fold "
                                       f"{bundle['fold']} features, coloured by {label}")
    save_figure(outputs["plot"], fig, dpi=110)
    plt.close(fig)
    log.info("embedded %d samples (%d features)", len(ids), feats.shape[1])
    return {"n_samples": len(ids), "n_features": int(feats.shape[1]), "color_label": label}
