"""What training leaves on disk: the resumable training state and the weights bundle.

- Training state (``checkpoints/{model}/fold{fold}/last.pt``, outside the job's declared
  outputs so Snakemake does not delete it when a job is killed; ``last.seed{k}.pt`` for
  the k-th extra seed of ``n_seeds``): weights, optimiser, every RNG state, history and
  the best weights so far, tagged with a fingerprint of what determines the run; a
  re-started job resumes only from a state whose fingerprint matches.
- Weights bundle (``models/{model}/fold{fold}/model.pt``): the kept weights (of every
  seed, with ``n_seeds`` > 1) with the model's settings (stored as a plain dict), labels,
  image shape, training width, fold and the metadata standardiser; :func:`load_trained`
  rebuilds the model from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config.typed import as_dict
from ..data.metadata import Standardizer
from ..errors import InputError
from .models import create_member
from .settings import ModelSettings

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def save_torch(path: PathLike, obj: Any) -> None:
    """``torch.save`` written atomically (an interrupted job leaves no half file)."""
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _digest(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        data = tensor.numpy().tobytes() + str((tuple(tensor.shape), str(tensor.dtype))).encode()
    else:
        data = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def run_fingerprint(settings: ModelSettings, fold: int, train_ids: Sequence[str],
                    extra: Mapping[str, Any] | None = None, *,
                    tensors: Mapping[str, torch.Tensor] | None = None,
                    code: str | None = None) -> dict[str, str]:
    """What determines a training run, part by part (a checkpoint resumes only when every
    part matches; the parts that differ say why it starts over): the settings, the fold
    and its training ids, ``extra`` (task, labels, image shape, metadata statistics), the
    content of ``tensors`` (the input renders and label values) and the code version."""
    parts = {"settings": _digest(as_dict(settings)), "fold": str(fold),
             "train_ids": _digest(list(train_ids)), "extra": _digest(extra or {}),
             "code": str(code)}
    parts.update({name: _digest(tensor) for name, tensor in (tensors or {}).items()})
    return parts


# --- resumable training state ---------------------------------------------------------------

def clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's weights."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def training_state(*, fingerprint: Mapping[str, str], epoch: int, model: nn.Module,
                   optimizer: torch.optim.Optimizer, generator: torch.Generator,
                   device: torch.device, history: list[dict[str, float]],
                   best_state: dict[str, torch.Tensor], best_epoch: int,
                   best_val: float, ema: dict[str, Any] | None = None,
                   snapshots: list[dict[str, torch.Tensor]] | None = None) -> dict[str, Any]:
    """Everything a resumed run needs after ``epoch`` (0-based), RNG states included
    (``snapshots``: the epochs' weights ``average_last_epochs`` has kept so far)."""
    on_cuda = device.type == "cuda"
    return {"fingerprint": fingerprint, "epoch": epoch, "model": clone_state(model),
            "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
            "generator": generator.get_state(), "python_rng": random.getstate(),
            "numpy_rng": np.random.get_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if on_cuda else None,
            "history": history, "best_state": best_state, "best_epoch": best_epoch,
            "best_val": best_val, "ema": ema, "snapshots": snapshots}


def matching_state(path: Path | None, fingerprint: Mapping[str, str], label: str
                   ) -> dict[str, Any] | None:
    """The training state at ``path`` when it exists and was written for ``fingerprint``;
    otherwise None, and the log says which parts differ (settings, renders, labels, code...)."""
    if not path or not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    saved = state.get("fingerprint")
    if saved == dict(fingerprint):
        return state
    if isinstance(saved, Mapping):
        why = ", ".join(sorted(k for k in set(saved) | set(fingerprint)
                               if saved.get(k) != fingerprint.get(k)))
    else:
        why = "an older checkpoint format"
    log.info("%s: checkpoint %s was written for other %s; starting over", label, path, why)
    return None


def restore_state(state: Mapping[str, Any], model: nn.Module,
                  optimizer: torch.optim.Optimizer, generator: torch.Generator,
                  device: torch.device) -> None:
    """Put weights, optimiser and every RNG back as :func:`training_state` saved them."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    generator.set_state(state["generator"])
    random.setstate(state["python_rng"])
    np.random.set_state(state["numpy_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


# --- the weights bundle ----------------------------------------------------------------------

def save_weights(path: PathLike, *, state_dict: dict[str, torch.Tensor],
                 settings: Mapping[str, Any], task: str, labels: Sequence[str],
                 image_shape: tuple[int, ...], train_width: int, fold: int, n_meta: int,
                 scaler: Standardizer | None) -> None:
    """Write the weights bundle; ``settings`` is the model's settings as a plain dict."""
    save_torch(path, {"state_dict": state_dict, "settings": dict(settings), "task": task,
                      "labels": list(labels), "image_shape": tuple(image_shape),
                      "train_width": train_width, "fold": fold, "n_meta": n_meta,
                      **(scaler.to_bundle() if scaler is not None else {})})


def load_trained(path: PathLike, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from its weights bundle (``n_seeds`` > 1: a
    :class:`~spectrovision.learn.models.SeedAverage`); returns ``(model in eval mode,
    bundle)`` where ``bundle["settings"]`` is the model's :class:`ModelSettings` and
    ``task``/``n_meta`` are filled for bundles written before they were stored."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model weights not found", "re-run the train rule")
    stored = torch.load(path, map_location="cpu", weights_only=False)
    settings = ModelSettings.with_defaults(stored["settings"], "model.pt settings")
    bundle = {"task": "multilabel", "n_meta": 0, **stored, "settings": settings}
    # the trained weights replace any initial backbone weights file
    architecture = dataclasses.replace(settings, weights=None)
    model = create_member(architecture, tuple(bundle["image_shape"]), len(bundle["labels"]),
                          n_meta=int(bundle["n_meta"]))
    model.load_state_dict(bundle["state_dict"])
    return model.to(device).eval(), bundle
