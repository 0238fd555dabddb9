"""1-D backbones over the time (or temperature) axis, chosen by name like a timm backbone.

An image ``(batch, channels, mass, time)`` becomes a sequence of ``time`` columns with
``channels x mass`` input channels (m/z rows as channels, the Mars-1 2nd-place recipe),
plus one normalised column-coordinate channel (-1 at the first column, +1 at the last:
absolute temperature matters and global pooling would otherwise discard it). Every net but
``massconv1d`` returns a feature map ``(batch, features, 1, time)`` with one feature vector
per column,
so the heads of :mod:`~spectrovision.learn.models` apply unchanged: ``pool`` (with each
net's :attr:`Net1d.pooling`) and ``sed`` (per-column logits); ``time_avg`` keeps a mass
axis these nets do not have, so :func:`create_net1d` refuses it. Any width along time
works, so the time resize, time warp, mixup and TTA widths of the training loop do too.

The registry :data:`NETS1D` (``models.<name>.backbone``):

- ``conv1d``: 1x1 stem, residual dilated convolutions (kernel 3, dilations 1, 2, 4, 8,
  16: a receptive field of 63 columns), batch norm, GELU; max + mean pooling.
- ``gru1d``: per-column linear projection, layer norm, one bidirectional GRU layer;
  max + mean pooling.
- ``transformer1d``: a token per column, learned positional embedding (one per column of
  the rendered image, linearly interpolated to other widths), a 2-layer pre-norm encoder
  with 4 heads; mean pooling.
- ``mzconv1d`` (:class:`MzConv1d`, the Mars-1 2nd place's shape): every m/z trace is
  convolved on its own with weights shared across m/z (a 2-D convolution with kernel
  (1, 3): the image's channels plus the column coordinate are the input channels of each
  trace), by parallel dilated convolutions (kernel 3, stride 2, dilations 1, 2, 4, ...
  below the rendered axis length) concatenated, group norm, GELU, a second strided
  convolution (kernel 3, stride 2), group norm, GELU; then a learned linear map across
  m/z (:data:`MZ_MIX` outputs, each a weighted sum of the m/z rows); max + mean pooling;
  the head's dropout (``drop_rate``, e.g. 0.5: the 2nd place's strong dropout) before the
  classifier. Its feature map has ``ceil(time / 4)`` columns
  (:attr:`Net1d.time_stride` = 4), not one per input column. Group norm's statistics run
  over the m/z rows and columns of one sample, so relative intensities across m/z survive
  and permuting the m/z rows permutes the features before the m/z map.
- ``massconv1d`` (:class:`MassConv1d`): ``conv1d``'s blocks turned to run along the m/z
  axis instead: every channel x temperature (or time) column is an input channel, plus a
  normalised m/z coordinate, so a pattern across neighbouring m/z (an isotope pair, a
  fragment series) is learned once for every m/z; max + mean pooling over m/z. Its
  feature map ``(batch, features, mass, 1)`` has one vector per m/z row (Grad-CAM maps
  vary along m/z, constant along time), so it takes head ``pool`` only; an image of
  another width is resampled linearly to the rendered width, since columns are channels.

``net_width`` (null = 64, for mzconv1d 32) is the conv channels (conv1d, massconv1d), the
GRU hidden size (per direction), the transformer's d_model or mzconv1d's channels per m/z
trace. They are trained from scratch: no weights file, no ``in_chans`` adapter.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..registry import Registry
from .augment import resize_time
from .settings import ModelSettings

DEFAULT_WIDTH = 64
INNER_DROP = 0.1  # dropout inside the nets; the head's dropout is the model's drop_rate


def axis_coordinate(n: int, like: torch.Tensor) -> torch.Tensor:
    """``n`` positions along an axis, normalised to [-1, 1], on ``like``'s device and dtype."""
    return torch.linspace(-1.0, 1.0, n, device=like.device, dtype=like.dtype)


def as_columns(x: torch.Tensor) -> torch.Tensor:
    """``(batch, channels, mass, time)`` -> ``(batch, channels * mass + 1, time)``: the
    input channels of a 1-D net, the last one the column coordinate in [-1, 1]."""
    batch, _, _, n_cols = x.shape
    coord = axis_coordinate(n_cols, x)
    return torch.cat([x.flatten(1, 2), coord.expand(batch, 1, n_cols)], dim=1)


class Net1d(nn.Module):
    """Base of the 1-D backbones: ``forward_features`` gives ``(batch, features, 1, time)``."""

    pooling: tuple[str, ...] = ("mean",)
    heads: tuple[str, ...] = ("pool", "sed")  # the heads of models.py it can feed
    # why another head cannot read its feature map ({head}: the refused head)
    head_note = ("folds the mass axis into its input channels, so head '{head}' has no mass "
                 "axis to keep")
    time_stride = 1  # the feature map has ceil(time / time_stride) columns
    default_width = DEFAULT_WIDTH  # net_width: null

    @classmethod
    def for_image(cls, image_shape: tuple[int, int, int], width: int) -> Net1d:
        """The net for images ``(channels, mass, time)``: every channel x mass row (and the
        column coordinate) an input channel of the time axis."""
        channels, height, n_columns = image_shape
        return cls(channels * height + 1, width, n_columns)  # type: ignore[call-arg]

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.n_features = n_features
        # a module whose output is the 4-d feature map: Grad-CAM's target layer
        self.to_map = nn.Unflatten(1, (n_features, 1))

    def columns(self, x: torch.Tensor) -> torch.Tensor:
        """Per-column features ``(batch, features, time)`` of a flattened image."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_map(self.columns(as_columns(x)))


class ResBlock1d(nn.Module):
    """Dilated conv (kernel 3) -> BN -> GELU -> dropout -> 1x1 conv -> BN, plus the input."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.norm = nn.BatchNorm1d(width)
        self.drop = nn.Dropout(INNER_DROP)
        self.mix = nn.Conv1d(width, width, 1)
        self.mix_norm = nn.BatchNorm1d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.norm(self.conv(x)))
        return F.gelu(x + self.mix_norm(self.mix(self.drop(h))))


class DilatedConv1d(Net1d):
    pooling = ("max", "mean")

    def __init__(self, in_channels: int, width: int, n_columns: int,
                 dilations: tuple[int, ...] = (1, 2, 4, 8, 16)) -> None:
        super().__init__(width)
        self.stem = nn.Sequential(nn.Conv1d(in_channels, width, 1), nn.BatchNorm1d(width),
                                  nn.GELU())
        self.blocks = nn.Sequential(*[ResBlock1d(width, d) for d in dilations])

    def columns(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class Gru1d(Net1d):
    pooling = ("max", "mean")

    def __init__(self, in_channels: int, width: int, n_columns: int) -> None:
        super().__init__(2 * width)
        self.proj = nn.Sequential(nn.Linear(in_channels, width), nn.LayerNorm(width),
                                  nn.GELU(), nn.Dropout(INNER_DROP))
        self.gru = nn.GRU(width, width, batch_first=True, bidirectional=True)

    def columns(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.proj(x.transpose(1, 2)))
        return h.transpose(1, 2)


class Transformer1d(Net1d):
    pooling = ("mean",)
    n_heads = 4

    def __init__(self, in_channels: int, width: int, n_columns: int, n_layers: int = 2) -> None:
        super().__init__(width)
        self.proj = nn.Linear(in_channels, width)
        self.pos = nn.Parameter(torch.zeros(1, width, n_columns))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(width, self.n_heads, 2 * width, INNER_DROP,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def positions(self, n_cols: int) -> torch.Tensor:
        """The positional embedding ``(1, width, n_cols)``, resized like the image's time."""
        if self.pos.shape[-1] == n_cols:
            return self.pos
        return F.interpolate(self.pos, size=n_cols, mode="linear", align_corners=False)

    def columns(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(x.transpose(1, 2)) + self.positions(x.shape[-1]).transpose(1, 2)
        return self.norm(self.encoder(tokens)).transpose(1, 2)


MZ_MIX = 16  # outputs of mzconv1d's linear map across m/z
# mzconv1d works on every m/z trace: at width 64 it trains ~8x slower than conv1d on a
# 100 x 110 render (docs/benchmarks.md), at 32 about 2.5x faster than at 64
MZ_DEFAULT_WIDTH = 32


def dilations_below(n_columns: int) -> tuple[int, ...]:
    """1, 2, 4, ... while smaller than ``n_columns`` (at least 1): the dilations of
    mzconv1d's parallel convolutions, whose widest kernel then spans the axis."""
    out = [1]
    while out[-1] * 2 < n_columns:
        out.append(out[-1] * 2)
    return tuple(out)


def _groups(channels: int) -> int:
    """Groups of a group norm over ``channels``: the largest of 8, 4, 2, 1 dividing it."""
    return math.gcd(channels, 8)


class MzConv1d(Net1d):
    """Per-m/z-trace dilated convolutions shared across m/z, then a linear map across m/z
    (the module docstring has the recipe). ``in_channels`` is the image's channels."""

    pooling = ("max", "mean")
    time_stride = 4
    default_width = MZ_DEFAULT_WIDTH

    @classmethod
    def for_image(cls, image_shape: tuple[int, int, int], width: int) -> Net1d:
        """Every m/z trace on its own: the image's channels are each trace's inputs."""
        channels, height, n_columns = image_shape
        return cls(channels, width, height, n_columns)

    def __init__(self, in_channels: int, width: int, n_mass: int, n_columns: int,
                 n_mix: int = MZ_MIX) -> None:
        super().__init__(width * n_mix)
        dilations = dilations_below(n_columns)
        branch = -(-width // len(dilations))  # ceil: every branch the same width
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels + 1, branch, (1, 3), stride=(1, 2), padding=(0, d),
                      dilation=(1, d)) for d in dilations)
        stacked = branch * len(dilations)
        self.norm1 = nn.GroupNorm(_groups(stacked), stacked)
        self.conv2 = nn.Conv2d(stacked, width, (1, 3), stride=(1, 2), padding=(0, 1))
        self.norm2 = nn.GroupNorm(_groups(width), width)
        self.mix = nn.Linear(n_mass, n_mix)

    def traces(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, mass, time)`` -> per-trace features ``(batch, width, mass,
        ceil(time / 4))``, before the map across m/z."""
        batch, _, n_mass, n_cols = x.shape
        coord = axis_coordinate(n_cols, x)
        h = torch.cat([x, coord.expand(batch, 1, n_mass, n_cols)], dim=1)
        h = F.gelu(self.norm1(torch.cat([conv(h) for conv in self.branches], dim=1)))
        return F.gelu(self.norm2(self.conv2(h)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.traces(x)  # (batch, width, mass, t)
        mixed = self.mix(h.transpose(2, 3))  # (batch, width, t, n_mix)
        return self.to_map(mixed.permute(0, 1, 3, 2).flatten(1, 2))


class MassConv1d(DilatedConv1d):
    """``conv1d``'s blocks turned to run along the m/z axis: every channel x temperature
    (or time) column is an input channel, plus a normalised m/z coordinate; the feature
    map ``(batch, features, mass, 1)`` has one vector per m/z row (the module docstring).
    An image of another width along time is resampled (linearly) to the rendered width
    first, since the columns are its input channels."""

    heads = ("pool",)
    head_note = ("gives one feature vector per m/z row, with the time axis folded into its "
                 "input channels, so head '{head}' has no time axis to read")

    @classmethod
    def for_image(cls, image_shape: tuple[int, int, int], width: int) -> Net1d:
        channels, height, n_columns = image_shape
        return cls(channels * n_columns + 1, width, n_columns, height)

    def __init__(self, in_channels: int, width: int, n_columns: int, n_mass: int) -> None:
        super().__init__(in_channels, width, n_columns)
        self.n_columns = n_columns
        self.to_map = nn.Unflatten(2, (n_mass, 1))  # (batch, features, mass) -> 4-d

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = resize_time(x, self.n_columns)
        batch, _, n_mass, _ = x.shape
        rows = x.transpose(2, 3).flatten(1, 2)  # (batch, channels * columns, mass)
        coord = axis_coordinate(n_mass, x)
        rows = torch.cat([rows, coord.expand(batch, 1, n_mass)], dim=1)
        return self.to_map(self.columns(rows))


BACKBONE_KEY = "models/<name>/backbone"
#: 1-D net name (``models.<name>.backbone``, named in the schema's description) -> its class
NETS1D: Registry[type[Net1d]] = Registry("1-D backbone", BACKBONE_KEY, {
    "conv1d": DilatedConv1d, "gru1d": Gru1d, "transformer1d": Transformer1d,
    "mzconv1d": MzConv1d, "massconv1d": MassConv1d,
})


def is_net1d(backbone: str) -> bool:
    return backbone in NETS1D


def create_net1d(settings: ModelSettings, image_shape: tuple[int, int, int]) -> Net1d:
    """The registered 1-D net ``settings.backbone`` for images ``(channels, mass, time)``;
    a :class:`~spectrovision.errors.ConfigError` for settings that do not apply to it."""
    key, name = f"models/{settings.name}", settings.backbone
    if settings.weights:
        raise ConfigError(f"config key '{key}/weights': the 1-D backbone '{name}' is trained "
                          "from scratch and loads no weights file. Fix: set weights: null, "
                          "or pick a timm backbone.")
    if settings.in_chans:
        raise ConfigError(f"config key '{key}/in_chans': the 1-D backbone '{name}' reads "
                          "every channel x mass row as an input channel, without a 1x1 "
                          "adapter. Fix: set in_chans: null.")
    net = NETS1D.get(name, f"{key}/backbone")
    if settings.head not in net.heads:
        usable = " or ".join(f"'{head}'" for head in net.heads)
        raise ConfigError(f"config key '{key}/head': the 1-D backbone '{name}' "
                          f"{net.head_note.format(head=settings.head)}. Fix: use head "
                          f"{usable}.")
    width = net.default_width if settings.net_width is None else int(settings.net_width)
    if name == "transformer1d" and width % Transformer1d.n_heads:
        raise ConfigError(f"config key '{key}/net_width': {width} is not a multiple of the "
                          f"transformer's {Transformer1d.n_heads} attention heads. Fix: "
                          "e.g. 32, 64 or 128.")
    return net.for_image(image_shape, width)
