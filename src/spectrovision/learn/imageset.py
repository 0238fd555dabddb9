"""Rendered images of a stage: the stacked renders (NPY + id CSV) of every split, read into
memory as float16 for the sample ids asked for, in that order; and the label matrix of ids.

Training, prediction and the analyses read their images here: the input pipeline is a
tensor index (float32 batch by batch), no worker processes.

Reading never holds more than the float16 tensor that is asked for plus one chunk of at
most :data:`CHUNK_BYTES`: :class:`StackIndex` knows where each sample's image lies
(stack file, row) and reads the rows asked for with plain file reads into a preallocated
tensor, chunk by chunk, so neither the stack's dtype on disk (float16 or float32) nor a
memory map's pages add to the job's resident memory.
"""

from __future__ import annotations

import os
from collections.abc import Container, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..io import read_csv

PathLike = str | os.PathLike[str]
CHUNK_BYTES = 32 << 20  # rows read per chunk: at most this many bytes of the stack's dtype


@dataclass(frozen=True)
class StackFile:
    """One stacked-render NPY: its path, where its data start, dtype and shape."""

    path: Path
    offset: int
    dtype: np.dtype
    shape: tuple[int, ...]

    @classmethod
    def open(cls, path: PathLike) -> StackFile:
        stack = np.load(path, mmap_mode="r")  # reads the header only
        if not stack.flags.c_contiguous:
            raise InputError(path, "is not a C-ordered stack", "re-run the render stack rule")
        layout = cls(Path(path), int(stack.offset), stack.dtype, tuple(stack.shape))
        del stack
        return layout

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def read_rows(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Read the (sorted) ``rows`` into ``out`` (one row each, this file's dtype), one
        file read per run of consecutive rows."""
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        flat = out.reshape(len(rows), -1).view(np.uint8)
        with open(self.path, "rb", buffering=0) as handle:
            for run in np.split(np.arange(len(rows)), breaks):
                if not len(run):
                    continue
                handle.seek(self.offset + int(rows[run[0]]) * self.row_bytes)
                _read_exact(handle, memoryview(flat[run[0]:run[-1] + 1]).cast("B"), self.path)


def _read_exact(handle: object, view: memoryview, path: Path) -> None:
    done = 0
    while done < len(view):
        got = handle.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            raise InputError(path, "ends before its last image", "re-run the render stack rule")
        done += got


def check_present(wanted: Sequence[str], known: Container[str]) -> None:
    """An InputError naming the ids of ``wanted`` that have no image (not in ``known``)."""
    missing = [s for s in wanted if s not in known]
    if missing:
        raise InputError("render stacks", f"{len(missing)} samples have no image, e.g. "
                         f"{missing[:5]}", "re-run the render rules for this representation")


@dataclass
class StackIndex:
    """Where every sample's image lies in the stacked renders; :meth:`select` reads them."""

    files: list[StackFile]
    where: dict[str, tuple[int, int]]  # sample_id -> (file, row)
    ids: list[str]  # every sample, in stack order

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one image: (channels, m/z, x)."""
        return self.files[0].shape[1:]

    def select(self, wanted: Sequence[str]) -> torch.Tensor:
        """``(len(wanted), C, mass, x)`` float16 images of ``wanted``, in that order."""
        check_present(wanted, self.where)
        images = torch.empty((len(wanted), *self.shape), dtype=torch.float16)
        out = images.numpy()
        places = np.array([self.where[s] for s in wanted], dtype=np.int64).reshape(-1, 2)
        for number, layout in enumerate(self.files):
            dest = np.flatnonzero(places[:, 0] == number)
            if not len(dest):
                continue
            dest = dest[np.argsort(places[dest, 1], kind="stable")]
            step = max(1, CHUNK_BYTES // max(layout.row_bytes, 1))
            direct = layout.dtype == np.float16
            for start in range(0, len(dest), step):
                part = dest[start:start + step]
                rows = places[part, 1]
                if direct and np.all(np.diff(part) == 1):
                    layout.read_rows(rows, out[part[0]:part[-1] + 1])
                    continue
                buffer = np.empty((len(part), *self.shape), dtype=layout.dtype)
                layout.read_rows(rows, buffer)
                out[part] = buffer
        return images


def open_stacks(stacks: Sequence[PathLike], stack_ids: Sequence[PathLike]) -> StackIndex:
    """Index stacked renders (+ their id CSVs) without reading any image."""
    files: list[StackFile] = []
    where: dict[str, tuple[int, int]] = {}
    ids: list[str] = []
    for stack_path, csv_path in zip(stacks, stack_ids, strict=True):
        listed = read_csv(csv_path)["sample_id"].tolist()
        layout = StackFile.open(stack_path)
        if len(listed) != layout.shape[0]:
            raise InputError(csv_path, f"lists {len(listed)} samples but {Path(stack_path).name}"
                             f" holds {layout.shape[0]} images", "re-run the render stack rule")
        if files and layout.shape[1:] != files[0].shape[1:]:
            raise InputError(stack_path, f"holds images of shape {layout.shape[1:]}, "
                             f"{files[0].path.name} of {files[0].shape[1:]}",
                             "re-run the render rules for this representation")
        for row, sample_id in enumerate(listed):
            where.setdefault(sample_id, (len(files), row))
        ids += listed
        files.append(layout)
    if not files:
        raise InputError("render stacks", "no stack to read", "check the render stacks")
    return StackIndex(files, where, ids)


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
        check_present(wanted, index)
        return self.images[torch.as_tensor([index[s] for s in wanted], dtype=torch.long)]


def load_image_set(stacks: Sequence[PathLike], stack_ids: Sequence[PathLike],
                   keep: set[str] | None = None) -> ImageSet:
    """Read stacked renders (+ their id CSVs), keeping only ``keep`` when given, in stack
    order. Reading straight into the tensor a job keeps: see :func:`open_stacks`."""
    index = open_stacks(stacks, stack_ids)
    ids = [s for s in index.ids if keep is None or s in keep]
    if not ids:
        raise InputError(stacks[0] if stacks else "render stacks", "no images to read",
                         "check the folds and the render stacks")
    return ImageSet(ids, index.select(ids))


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
