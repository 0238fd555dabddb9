"""Novelty of unlabelled samples: autoencoder reconstruction error + ensemble uncertainty.

- Reconstruction error: a small convolutional autoencoder (:class:`ConvAutoencoder`,
  three stride-2 convolutions down to a narrow bottleneck and back) is trained, seeded and
  on the CPU, on the renders of the labelled (training) samples of one representation;
  the per-sample mean squared error of its reconstruction of each unlabelled render
  measures how unlike the training data that sample is.
- Entropy: mean over labels of the binary entropy (bits, 0..1) of the ensemble's test
  probability.
- Disagreement: standard deviation (population) across the ensemble's selected members'
  test probabilities, averaged over labels.

Ranks: 1 = most novel (highest value) for each score.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..learn.settings import as_settings
from ..metrics import sigmoid, to_probs
from ..render.axes import RenderAxes
from .settings import NoveltySettings

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


class ConvAutoencoder(nn.Module):
    """Conv encoder (stride 2 three times) to ``bottleneck`` channels, mirrored decoder;
    the output is resized to the input's shape (any image size works)."""

    def __init__(self, channels: int, width: int = 16, bottleneck: int = 4) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, bottleneck, 3, stride=2, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(bottleneck, 2 * width, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.decoder(self.encoder(x))
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


def train_autoencoder(images: torch.Tensor, *, epochs: int, seed: int, batch_size: int = 32,
                      lr: float = 2e-3) -> ConvAutoencoder:
    """Fit the autoencoder to ``images`` (N, C, H, W) with MSE, AdamW, seeded shuffles."""
    torch.manual_seed(int(seed))
    generator = torch.Generator().manual_seed(int(seed))
    model = ConvAutoencoder(images.shape[1])
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    model.train()
    for epoch in range(int(epochs)):
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for start in range(0, len(images), batch_size):
            xb = images[order[start:start + batch_size]].float()
            loss = F.mse_loss(model(xb), xb)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(xb)
        log.info("autoencoder epoch %d: mse %.5f", epoch + 1, total / len(images))
    return model.eval()


def reconstruction_error(model: nn.Module, images: torch.Tensor, batch_size: int = 64
                         ) -> np.ndarray:
    """Mean squared reconstruction error per sample."""
    errors = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            xb = images[start:start + batch_size].float()
            errors.append(((model(xb) - xb) ** 2).flatten(1).mean(dim=1).numpy())
    return np.concatenate(errors).astype(np.float64) if errors else np.zeros(0)


def binary_entropy(probs: np.ndarray) -> np.ndarray:
    """Elementwise binary entropy in bits (0 at p = 0 or 1, 1 at p = 0.5)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def mean_entropy(logits: np.ndarray, task: str = "multilabel") -> np.ndarray:
    """Per sample, in bits: multilabel, the mean over labels of the binary entropy of
    ``sigmoid(logits)``; multiclass (``logits`` are log-probabilities), the entropy of the
    class distribution ``softmax(logits)`` divided by log2(n_classes), so both lie in 0..1."""
    scores = np.asarray(logits, dtype=np.float64)
    if task != "multiclass":
        return binary_entropy(sigmoid(scores)).mean(axis=1)
    probs = np.clip(to_probs(scores, task), 1e-12, 1.0)
    return -(probs * np.log2(probs)).sum(axis=1) / np.log2(max(scores.shape[1], 2))


def member_disagreement(member_logits: Sequence[np.ndarray],
                        task: str = "multilabel") -> np.ndarray:
    """Per sample: std across members of each label's (multilabel: sigmoid) or class's
    (multiclass: softmax) probability, averaged over labels (0 for a single member)."""
    probs = np.stack([to_probs(np.asarray(x, dtype=np.float64), task) for x in member_logits])
    return probs.std(axis=0).mean(axis=1)


def descending_rank(values: np.ndarray) -> np.ndarray:
    """1 = largest; ties share the smallest rank."""
    return pd.Series(values).rank(ascending=False, method="min").astype(int).to_numpy()


def novelty_table(ids: Sequence[str], recon: np.ndarray, entropy: np.ndarray,
                  disagreement: np.ndarray) -> pd.DataFrame:
    """One row per sample, sorted by reconstruction error (most novel first)."""
    table = pd.DataFrame({"sample_id": list(ids), "recon_error": recon, "entropy": entropy,
                          "disagreement": disagreement})
    for col in ("recon_error", "entropy", "disagreement"):
        table[f"rank_{col}"] = descending_rank(table[col].to_numpy())
    return table.sort_values(["rank_recon_error", "sample_id"]).reset_index(drop=True)


def aligned_logits(table: pd.DataFrame, ids: Sequence[str], labels: Sequence[str],
                   source: PathLike) -> np.ndarray:
    """``table``'s label columns in the order of ``ids`` (every id must be there)."""
    indexed = table.assign(sample_id=table["sample_id"].astype(str)).set_index("sample_id")
    missing = [s for s in ids if s not in indexed.index]
    if missing:
        raise InputError(source, f"no logits for {len(missing)} unlabelled samples, e.g. "
                         f"{missing[:5]}", "re-run prediction on the current sample sheet")
    absent = [c for c in labels if c not in indexed.columns]
    if absent:
        raise InputError(source, f"label columns {absent} are missing", "re-run prediction",
                         column=absent[0])
    return indexed.loc[list(ids), list(labels)].to_numpy(np.float64)


def gallery_figure(images: np.ndarray, table: pd.DataFrame, *, log_mode: str,
                   axes: RenderAxes, title: str) -> Any:
    """Renders of ``table``'s samples (rows in ``images`` order) on the representation's
    ``axes``, titled with their scores."""
    from ..report.figures import render_grid

    names = [f"{r.sample_id}\nrecon {r.recon_error:.3g}, H {r.entropy:.2f}, "
             f"sd {r.disagreement:.2f}" for r in table.itertuples()]
    return render_grid(images, names, log_mode=log_mode, axes=axes, title=title)


def run_novelty(*, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                settings: NoveltySettings | Mapping[str, Any], train_ids: Sequence[str],
                unlabelled: Sequence[str], members: Sequence[str], labels: Sequence[str],
                seed: int, log_mode: str, axes: RenderAxes | Mapping[str, Any],
                threads: int = 1, task: str = "multilabel") -> dict[str, Any]:
    """Write ``outputs['scores']`` (novelty_scores.csv) and ``outputs['gallery']`` (PNG of
    the ``top_k`` samples with the highest reconstruction error).

    ``inputs``: ``stacks``/``stack_ids`` (the novelty representation's stacked renders),
    ``ensemble`` (its test logits), ``selection`` (selection.json) and ``members`` (the
    test logits of each candidate member, in the order of ``members``); ``settings``: the
    ``novelty:`` block; ``seed``: the autoencoder's seed (the global seed);
    ``log_mode``/``axes`` (a :class:`RenderAxes` or its ``as_dict``): how the gallery draws
    the renders."""
    import json

    import matplotlib.pyplot as plt

    from ..io import save_figure, write_csv
    from ..learn.imageset import load_image_set

    render_axes = RenderAxes.of(axes)
    scoring = as_settings(NoveltySettings, settings, "novelty")
    ensemble_test, selection = inputs["ensemble"], inputs["selection"]
    member_tests = dict(zip(members, inputs["members"], strict=True))
    torch.set_num_threads(max(int(threads), 1))
    test_ids = sorted(map(str, unlabelled))
    if not test_ids:
        raise InputError(ensemble_test, "there are no unlabelled samples to score",
                         "set novelty.enabled: false for data without unlabelled samples")
    chosen = json.loads(open(selection).read())["members"]
    absent = [m for m in chosen if m not in member_tests]
    if absent:
        raise InputError(selection, f"selected members {absent} have no test logits here",
                         "re-run the ensemble rule")
    images = load_image_set(inputs["stacks"], inputs["stack_ids"],
                            keep=set(map(str, train_ids)) | set(test_ids))
    train_x = images.select(sorted(set(map(str, train_ids)) & set(images.ids)))
    test_x = images.select(test_ids)
    render_axes.check_shape(tuple(test_x.shape))
    model = train_autoencoder(train_x, epochs=scoring.epochs, seed=seed)
    recon = reconstruction_error(model, test_x)
    ens = aligned_logits(pd.read_parquet(ensemble_test), test_ids, labels, ensemble_test)
    member_logits = [aligned_logits(pd.read_parquet(member_tests[m]), test_ids, labels,
                                    member_tests[m]) for m in chosen]
    table = novelty_table(test_ids, recon, mean_entropy(ens, task),
                          member_disagreement(member_logits, task))
    write_csv(outputs["scores"], table)
    top = table.head(max(int(scoring.top_k), 1))
    position = {s: i for i, s in enumerate(test_ids)}
    shown = test_x[[position[s] for s in top["sample_id"]]].float().numpy()
    fig = gallery_figure(shown, top, log_mode=log_mode, axes=render_axes,
                         title=f"top {len(top)} unlabelled samples by autoencoder "
                               "reconstruction error")
    save_figure(outputs["gallery"], fig, dpi=100)
    plt.close(fig)
    log.info("scored %d unlabelled samples (autoencoder on %d renders, members %s)",
             len(test_ids), len(train_x), chosen)
    return {"n_scored": len(test_ids), "n_train": int(len(train_x)), "members": chosen}
