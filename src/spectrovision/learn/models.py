"""Networks: a timm backbone behind a 1x1 input adapter, with one of three heads.

Images are ``(batch, channels, mass, time)``: height is the mass axis, width the time
(or temperature) axis. Backbones come from timm by name and are never downloaded:
``pretrained=False`` always, and a model may name a local weights file instead.

``backbone`` may also name a 1-D net of :data:`~spectrovision.learn.nets1d.NETS1D`
(``conv1d``, ``gru1d``, ``transformer1d``, ``mzconv1d``, ``massconv1d``): built from that
registry instead of timm, it reads channels x mass rows as input channels (``mzconv1d``:
every m/z trace on its own, then a map across m/z) and gives one feature vector per time
column (per 4 columns for ``mzconv1d``); ``massconv1d`` convolves along m/z instead, the
columns its input channels, and gives one feature vector per m/z row.

Heads (the registry :data:`HEADS`, chosen by name like timm's ``create_model``):

- ``pool``: global average over mass and time, dropout, linear.
- ``time_avg``: average over time only, keep the mass axis, flatten, linear (a
  mass-resolved classifier, the Mars-2 2nd-place recipe).
- ``sed``: sound-event-detection attention head: per-time-bin logits (after averaging
  over mass) weighted by a softmax attention over time give the clip logit; the per-time
  logits are returned too so the loss can use both.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from ..config.checks import check_head_metadata
from ..errors import ConfigError, InputError
from ..registry import Registry
from .nets1d import create_net1d, is_net1d
from .settings import ModelSettings

log = logging.getLogger(__name__)


class InputAdapter(nn.Module):
    """Trainable 1x1 convolution mapping the image's channels to the backbone's."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=True)
        with torch.no_grad():  # start as "copy the intensity channel to every input"
            self.conv.weight.zero_()
            self.conv.weight[:, 0] = 1.0
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


POOLINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean": lambda fmap: fmap.mean(dim=(2, 3)), "max": lambda fmap: fmap.amax(dim=(2, 3)),
}


class PoolHead(nn.Module):
    """Global pooling over mass and time (``pooling``: mean, or several concatenated, as a
    1-D backbone asks), dropout, linear."""

    def __init__(self, n_features: int, fmap_height: int, n_outputs: int, drop_rate: float,
                 n_extra: int = 0, pooling: Sequence[str] = ("mean",)) -> None:
        super().__init__()
        self.pooling = tuple(pooling)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(n_features * len(self.pooling) + n_extra, n_outputs)

    def embed(self, fmap: torch.Tensor) -> torch.Tensor:
        if self.pooling == ("mean",):
            return fmap.mean(dim=(2, 3))
        return torch.cat([POOLINGS[p](fmap) for p in self.pooling], dim=1)

    def forward(self, embedding: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.fc(self.drop(embedding))}


class TimeAvgHead(PoolHead):
    def __init__(self, n_features: int, fmap_height: int, n_outputs: int, drop_rate: float,
                 n_extra: int = 0) -> None:
        super().__init__(n_features * fmap_height, fmap_height, n_outputs, drop_rate, n_extra)

    def embed(self, fmap: torch.Tensor) -> torch.Tensor:
        return fmap.mean(dim=3).flatten(1)


class SedHead(nn.Module):
    def __init__(self, n_features: int, fmap_height: int, n_outputs: int, drop_rate: float,
                 n_extra: int = 0) -> None:
        super().__init__()  # n_extra: always 0 (config.checks.check_head_metadata)
        self.drop = nn.Dropout(drop_rate)
        self.attention = nn.Conv1d(n_features, n_outputs, kernel_size=1)
        self.classifier = nn.Conv1d(n_features, n_outputs, kernel_size=1)

    def embed(self, fmap: torch.Tensor) -> torch.Tensor:
        return fmap.mean(dim=2)  # (batch, features, time)

    def forward(self, embedding: torch.Tensor) -> dict[str, torch.Tensor]:
        frames = self.drop(embedding)
        weights = torch.softmax(torch.tanh(self.attention(frames)), dim=-1)
        frame_logits = self.classifier(frames)
        return {"logits": (weights * frame_logits).sum(dim=-1), "frame_logits": frame_logits}


#: head name (``models.<name>.head``, the schema's enum) -> its class
HEADS: Registry[Callable[..., nn.Module]] = Registry("head", "models/<name>/head", {
    "pool": PoolHead, "time_avg": TimeAvgHead, "sed": SedHead,
})


class MetadataBranch(nn.Module):
    """A small MLP over numeric metadata whose output joins the pooled image features."""

    def __init__(self, n_inputs: int, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_inputs, width), nn.ReLU(),
                                 nn.Linear(width, width), nn.ReLU())
        self.width = width

    def forward(self, meta: torch.Tensor) -> torch.Tensor:
        return self.net(meta)


class SpectroNet(nn.Module):
    """Input adapter -> timm backbone (feature map) -> head, optionally fused with metadata."""

    def __init__(self, backbone: nn.Module, head: nn.Module, adapter: nn.Module | None,
                 meta_branch: MetadataBranch | None = None) -> None:
        super().__init__()
        self.adapter = adapter if adapter is not None else nn.Identity()
        self.backbone = backbone
        self.head = head
        self.meta_branch = meta_branch

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(self.adapter(x))

    def embed(self, x: torch.Tensor, meta: torch.Tensor | None = None) -> torch.Tensor:
        """Penultimate features: what the head's last linear layer sees."""
        embedding = self.head.embed(self.feature_map(x))
        if self.meta_branch is not None:
            if meta is None:
                raise ValueError("this model fuses metadata: pass meta")
            embedding = torch.cat([embedding, self.meta_branch(meta)], dim=1)
        return embedding

    def forward_heads(self, x: torch.Tensor,
                      meta: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.head(self.embed(x, meta))

    def forward(self, x: torch.Tensor, meta: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_heads(x, meta)["logits"]


class SeedAverage(nn.Module):
    """The ``n_seeds`` models of one fold (the same settings, seeds ``seed`` ...
    ``seed + n - 1``) as one model whose logits are the mean of theirs. Analysis that
    needs one network (Grad-CAM's feature map, embeddings) reads the first seed's:
    :attr:`backbone`, :attr:`head`, :meth:`feature_map` and :meth:`embed` are its."""

    def __init__(self, members: Sequence[SpectroNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("SeedAverage needs at least one model")
        self.members = nn.ModuleList(members)

    @property
    def first(self) -> SpectroNet:
        first = self.members[0]
        assert isinstance(first, SpectroNet)
        return first

    @property
    def backbone(self) -> nn.Module:
        return self.first.backbone

    @property
    def head(self) -> nn.Module:
        return self.first.head

    @property
    def meta_branch(self) -> MetadataBranch | None:
        return self.first.meta_branch

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.first.feature_map(x)

    def embed(self, x: torch.Tensor, meta: torch.Tensor | None = None) -> torch.Tensor:
        return self.first.embed(x, meta)

    def forward(self, x: torch.Tensor, meta: torch.Tensor | None = None) -> torch.Tensor:
        return torch.stack([member(x, meta) for member in self.members]).mean(dim=0)


def seed_average_state(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The state dict of a :class:`SeedAverage` of models with weights ``states``."""
    return {f"members.{k}.{key}": value for k, state in enumerate(states)
            for key, value in state.items()}


def create_member(settings: ModelSettings, image_shape: tuple[int, int, int],
                  n_outputs: int, n_meta: int = 0) -> nn.Module:
    """The network a fold's weights bundle holds: :func:`create_model`, or with
    ``n_seeds`` > 1 a :class:`SeedAverage` of ``n_seeds`` of them."""
    n_seeds = int(settings.n_seeds)
    if n_seeds <= 1:
        return create_model(settings, image_shape, n_outputs, n_meta)
    return SeedAverage([create_model(settings, image_shape, n_outputs, n_meta)
                        for _ in range(n_seeds)])


def backbone_channels(settings: ModelSettings, image_channels: int) -> int:
    """Channels the backbone sees: ``in_chans``, else 3 with extra channels, else the image's."""
    if settings.in_chans:
        return int(settings.in_chans)
    return 3 if image_channels > 1 else image_channels


def create_model(settings: ModelSettings, image_shape: tuple[int, int, int],
                 n_outputs: int, n_meta: int = 0) -> SpectroNet:
    """Build the network a model's settings describe (resolved config, see ``resolve_model``).

    ``image_shape`` is ``(channels, mass, time)`` of the rendered images; the head's size
    depends on the mass axis only, so any time width works at training and prediction.
    """
    channels, height, width = image_shape
    head_name, key = settings.head, f"models/{settings.name}"
    head_class = HEADS.get(head_name, f"{key}/head")
    check_head_metadata(settings.name, head_name, n_meta)
    name = settings.backbone
    if is_net1d(name):
        return create_1d_model(settings, image_shape, n_outputs, n_meta)
    if settings.net_width is not None:
        raise ConfigError(f"config key 'models/{settings.name}/net_width': it sizes the 1-D "
                          f"backbones only, not the timm backbone '{name}'. Fix: set "
                          "net_width: null.")
    k = backbone_channels(settings, channels)
    import timm  # here, not at the top: a job with 1-D nets only skips its ~2 s import
    try:
        backbone = timm.create_model(name, pretrained=False, num_classes=0, in_chans=k,
                                     drop_rate=float(settings.drop_rate))
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        raise ConfigError(f"config key '{key}/backbone': '{name}': {exc}. Fix: pick a name "
                          "from timm.list_models().") from None
    if settings.weights:
        load_backbone_weights(backbone, settings.weights)
    adapter = InputAdapter(channels, k) if channels != k else None
    with torch.no_grad():
        was_training = backbone.training
        backbone.eval()
        probe = torch.zeros(1, k, height, max(width, 32))
        fmap = backbone.forward_features(probe)
        backbone.train(was_training)
    if fmap.ndim != 4:
        raise ConfigError(f"config key '{key}/backbone': '{name}' gives {fmap.ndim}-d "
                          "features. Fix: pick a CNN with a 4-d feature map (batch, features, "
                          "mass, time), e.g. resnet18.")
    meta_branch = MetadataBranch(n_meta) if n_meta else None
    head = head_class(fmap.shape[1], fmap.shape[2], n_outputs,
                            float(settings.drop_rate),
                            meta_branch.width if meta_branch else 0)
    return SpectroNet(backbone, head, adapter, meta_branch)


def create_1d_model(settings: ModelSettings, image_shape: tuple[int, int, int],
                    n_outputs: int, n_meta: int = 0) -> SpectroNet:
    """A registered 1-D backbone (:mod:`~spectrovision.learn.nets1d`) behind no adapter;
    the ``pool`` head pools as the net asks, ``sed`` reads its per-column features."""
    backbone = create_net1d(settings, image_shape)
    meta_branch = MetadataBranch(n_meta) if n_meta else None
    pooling = {"pooling": backbone.pooling} if settings.head == "pool" else {}
    head = HEADS.get(settings.head)(backbone.n_features, 1, n_outputs, float(settings.drop_rate),
                                meta_branch.width if meta_branch else 0, **pooling)
    return SpectroNet(backbone, head, None, meta_branch)


def load_backbone_weights(backbone: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a local weights file (a state dict, or a checkpoint holding one) into the backbone.

    Classifier weights and input layers of another shape are skipped and logged; nothing
    is ever downloaded.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file not found",
                         "give a local file under models.<name>.weights, or null to train "
                         "from scratch (weights are never downloaded)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = backbone.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state) - set(usable))
    if not usable:
        raise InputError(path, "no tensor matches the backbone's parameters",
                         "use weights of the same timm architecture")
    backbone.load_state_dict(usable, strict=False)
    log.info("loaded %d tensors from %s (skipped %d: %s)", len(usable), path, len(skipped),
             skipped[:5])


def model_summary(model: nn.Module) -> dict[str, int]:
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
