"""Rendered images of a stage: the stacked renders (memory-mapped NPY + id CSV) of every
split read into memory as float16, selected by sample id; and the label matrix of ids.

Training, prediction and the analyses read their images here: the input pipeline is a
tensor index (float32 batch by batch), no worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..io import read_csv

PathLike = str | os.PathLike[str]


@dataclass
class ImageSet:
    """Images (float16, in memory) of the samples ``ids``, in that order."""

    ids: list[str]
    images: torch.Tensor  # (N, C, mass, time)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one image: (channels, m/z, x)."""
        return tuple(int(v) for v in self.images.shape[1:])

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
        listed = read_csv(csv_path)["sample_id"].tolist()
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
    """``(len(ids), len(labels))`` float32 labels of ``ids`` (each must be labelled)."""
    missing = [s for s in ids if s not in label_table.index]
    if missing:
        raise InputError("label files", f"no labels for {missing[:5]}",
                         "re-run the folds rule: folds.csv must list labelled samples only")
    y = np.array(label_table.loc[list(ids), list(labels)], dtype=np.float32)
    if np.isnan(y).any():
        raise InputError("label files", "a training sample has an empty label",
                         "fill every label with 0 or 1")
    return torch.from_numpy(y)
