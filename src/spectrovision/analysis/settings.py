"""Typed settings of the analysis stages: ``explain:``, ``embed:``, ``novelty:``.

Each class declares the keys of its config block that change the stage's outputs; the
others (``enabled``, ``model``, ``fold``, ``representation``) choose what the workflow
builds and which inputs it reads (``config.checks``). Built from the validated block (the
schema holds every default) or from the rule's params with
:func:`~spectrovision.learn.settings.as_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExplainSettings:
    """Grad-CAM++: held-out samples shown per label, the labels (None = all)."""

    samples_per_label: int
    labels: list[str] | None


@dataclass(frozen=True)
class EmbedSettings:
    """UMAP of the penultimate features; ``color_label`` None = the first label."""

    n_neighbors: int
    min_dist: float
    color_label: str | None


@dataclass(frozen=True)
class NoveltySettings:
    """Autoencoder epochs and the gallery's size."""

    epochs: int
    top_k: int
