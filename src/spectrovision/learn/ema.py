"""Averages of a model's weights: an exponential moving average over optimiser steps
(setting ``ema_decay``, :class:`WeightAverage`) and the plain mean of a few epochs'
weights (setting ``average_last_epochs``, :func:`average_states`).

The average starts as a copy of the model and, after every optimiser step, moves towards the
live weights: ``avg = d * avg + (1 - d) * live`` for every floating-point parameter and
buffer (batch-norm running statistics included), integer buffers copied. The decay ramps up
as ``d_t = min(decay, (1 + t) / (10 + t))`` at update ``t`` (1-based), so the random initial
weights are forgotten within the first steps of a short run. Validation, the kept weights and
every prediction then use the average.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .checkpoint import clone_state


class WeightAverage:
    """The running average of ``model``'s weights with the given ``decay`` (0 < decay < 1)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for param in self.model.parameters():
            param.requires_grad_(False)

    def decay_at(self, update: int) -> float:
        """The decay applied at update ``update`` (1-based)."""
        return min(self.decay, (1.0 + update) / (10.0 + update))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        self.updates += 1
        d = self.decay_at(self.updates)
        live = model.state_dict()
        for name, avg in self.model.state_dict().items():
            value = live[name].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(value.to(avg.dtype), alpha=1.0 - d)
            else:
                avg.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint stores to resume the average exactly."""
        return {"updates": self.updates, "weights": clone_state(self.model)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.model.load_state_dict(state["weights"])


def average_states(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of the weights ``states`` (state dicts with the same keys): every
    floating-point tensor averaged elementwise in float64 and cast back to its dtype;
    other tensors (batch-norm counters) taken from the last state."""
    if not states:
        raise ValueError("average_states needs at least one state")
    out = {}
    for key, last in states[-1].items():
        if last.dtype.is_floating_point:
            stacked = torch.stack([state[key].to(torch.float64) for state in states])
            out[key] = stacked.mean(dim=0).to(last.dtype)
        else:
            out[key] = last.clone()
    return out
