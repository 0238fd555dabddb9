"""Training-time augmentations and the test-time time widths, on ``(B, C, mass, time)`` batches.

Every random choice draws from an explicit ``torch.Generator`` so a seeded run repeats
exactly (also after a resume, which restores the generator's state). The Mars-1 winner's
augmentations on the cached render (:class:`CachedAugment`: random scan within a window,
intensity scaling, background-quantile mix, sample mixing) run on the batch's device and
draw their random numbers from a host generator seeded once per batch from the loop's
(:func:`batch_generator`), so a seed gives the same draws on the CPU and on a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .settings import ModelSettings

MIN_WIDTH = 8


def resize_time(batch: torch.Tensor, width: int) -> torch.Tensor:
    """Resize the time (last) axis to ``width`` columns, mass axis unchanged (bilinear)."""
    if batch.shape[-1] == width:
        return batch
    return F.interpolate(batch, size=(batch.shape[-2], int(width)), mode="bilinear",
                         align_corners=False)


def random_time_width(lo: int, hi: int, generator: torch.Generator) -> int:
    """A width drawn uniformly from [lo, hi] (one per batch: batch-wise resize)."""
    return int(torch.randint(int(lo), int(hi) + 1, (1,), generator=generator).item())


def training_width(time_resize: Sequence[int] | None, n_x: int) -> int:
    """The width the model is trained around: centre of the resize range, else the render's."""
    if not time_resize:
        return int(n_x)
    lo, hi = time_resize
    return int(round((lo + hi) / 2))


def tta_time_sizes(train_width: int, n_widths: int, step: int) -> list[int]:
    """``n_widths`` time widths ``step`` apart, centred on ``train_width`` (>= 8 each)."""
    centre = (n_widths - 1) / 2
    sizes = [int(round(train_width + (i - centre) * step)) for i in range(n_widths)]
    if min(sizes) < MIN_WIDTH:
        raise ValueError(f"TTA widths {sizes} go below {MIN_WIDTH} columns; lower "
                         "predict.tta_step or predict.tta_n_widths")
    return sizes


def time_warp(batch: torch.Tensor, alpha_range: Sequence[float],
              generator: torch.Generator) -> torch.Tensor:
    """Warp each sample's time axis t -> t**alpha (t scaled to [0, 1]), alpha log-uniform
    in ``alpha_range`` per sample; linear interpolation between columns."""
    lo, hi = (float(a) for a in alpha_range)
    n, _, _, width = batch.shape
    u = torch.rand(n, generator=generator)
    alpha = torch.exp(torch.log(torch.tensor(lo)) + u * (torch.log(torch.tensor(hi))
                                                        - torch.log(torch.tensor(lo))))
    t = (torch.arange(width, dtype=torch.float32) + 0.5) / width  # column centres in (0,1)
    source = t.unsqueeze(0) ** alpha.unsqueeze(1) * width - 0.5  # (n, width)
    source = source.clamp(0, width - 1)
    left = source.floor().long()
    right = (left + 1).clamp(max=width - 1)
    frac = (source - left).to(batch.device, batch.dtype)
    left, right = left.to(batch.device), right.to(batch.device)

    def take(index: torch.Tensor) -> torch.Tensor:
        return torch.gather(batch, 3, index.view(n, 1, 1, width).expand_as(batch))

    w = frac.view(n, 1, 1, width)
    return take(left) * (1 - w) + take(right) * w


def mixup(x: torch.Tensor, y: torch.Tensor, p: float, generator: torch.Generator,
          multiclass: bool = False) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """With probability ``p`` mix the batch with a shuffled copy of itself, fraction
    U(0.4, 0.6); labels become the elementwise max (multilabel) or the same mixture of
    class distributions (multiclass). Returns ``(x, y, mixed)``."""
    x, y, _, mixed = mixup_with_meta(x, y, None, p, generator, multiclass)
    return x, y, mixed


def blend(a: torch.Tensor, b: torch.Tensor, lam: float, mode: str = "mean") -> torch.Tensor:
    """``lam * a + (1 - lam) * b`` (mode mean) or the elementwise max (mode max)."""
    return torch.maximum(a, b) if mode == "max" else lam * a + (1 - lam) * b


def blend_labels(y: torch.Tensor, partner: torch.Tensor, lam: float,
                 multiclass: bool) -> torch.Tensor:
    """Labels of a blend: the same mixture of class distributions (multiclass), else the
    elementwise max (multilabel: the union of the two samples' labels)."""
    return blend(y, partner, lam) if multiclass else torch.maximum(y, partner)


def mixup_with_meta(x: torch.Tensor, y: torch.Tensor, meta: torch.Tensor | None, p: float,
                    generator: torch.Generator, multiclass: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, bool]:
    """:func:`mixup` that mixes each sample's metadata vector (``meta``, or None) with the
    same partner and fraction as its image. Returns ``(x, y, meta, mixed)``."""
    if p <= 0 or float(torch.rand(1, generator=generator)) >= p:
        return x, y, meta, False
    lam = 0.4 + 0.2 * float(torch.rand(1, generator=generator))
    perm = torch.randperm(x.shape[0], generator=generator)
    x = blend(x, x[perm], lam)
    y = blend_labels(y, y[perm], lam, multiclass)
    if meta is not None:
        meta = blend(meta, meta[perm], lam)
    return x, y, meta, True


def sample_mix(x: torch.Tensor, y: torch.Tensor, meta: torch.Tensor | None, p: float,
               mode: str, generator: torch.Generator, multiclass: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Each sample, with probability ``p``, combined with a random partner of the batch by
    ``mode`` (mean or max of the images; metadata alike), labels as :func:`blend_labels`
    with weight 1/2 (max mode is for multilabel only). ``generator``: a host one
    (:func:`batch_generator`); the draws go to x's device."""
    if mode == "max" and multiclass:
        raise ValueError("sample_mix_mode max needs a multilabel task")
    n = x.shape[0]
    chosen = torch.rand(n, generator=generator, device=generator.device) < p
    perm = torch.randperm(n, generator=generator, device=generator.device)
    # a sample left alone is blended with itself, which is itself exactly (max, or halves)
    partner = torch.where(chosen, perm, torch.arange(n, device=perm.device)).to(x.device)
    x = blend(x, x[partner], 0.5, mode)
    y = blend_labels(y, y[partner], 0.5, multiclass)
    if meta is not None:
        meta = blend(meta, meta[partner], 0.5, mode)
    return x, y, meta


# --- the winner's augmentations on the cached render: scan, intensity, background -------------

def strided_width(n_x: int, stride: int) -> int:
    """Columns a model with ``scan_stride`` ``stride`` sees of an ``n_x``-column render."""
    return max(int(n_x) // int(stride), 1)


def centre_columns(n_x: int, stride: int) -> torch.Tensor:
    """Source column of each output column: ``j * stride + stride // 2``."""
    return torch.arange(strided_width(n_x, stride)) * int(stride) + int(stride) // 2


def scan_columns(n: int, n_x: int, stride: int, jitter: int,
                 generator: torch.Generator | None) -> torch.Tensor:
    """``(n, n_out)`` source columns: the centre columns, each moved by a triangular offset
    in [-jitter, jitter] (sum of two uniform integers in 0..jitter, minus jitter) drawn
    from ``generator`` (None = no offset), clamped to the render; on the generator's device."""
    device = generator.device if generator is not None else torch.device("cpu")
    centres = centre_columns(n_x, stride).to(device).expand(n, -1)
    if generator is None or jitter <= 0:
        return centres
    shape = tuple(centres.shape)
    offset = (torch.randint(0, jitter + 1, shape, generator=generator, device=device)
              + torch.randint(0, jitter + 1, shape, generator=generator, device=device) - jitter)
    return (centres + offset).clamp(0, n_x - 1)


def take_columns(batch: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``batch[b, :, :, columns[b, j]]`` for every output column j (all channels, rows)."""
    n, c, m, _ = batch.shape
    index = columns.to(batch.device).view(n, 1, 1, -1).expand(n, c, m, columns.shape[-1])
    return torch.gather(batch, 3, index)


def log_units(floor: float) -> float:
    """Natural-log span between a clipped_log10 render's floor and 1 (its value 0 -> 1):
    a value v is the linear intensity exp((v - 1) * log_units)."""
    return -math.log(float(floor))


def to_linear(values: torch.Tensor, floor: float) -> torch.Tensor:
    """clipped_log10 render values (0 = floor, 1 = the run's max) as linear intensities."""
    return torch.exp((values - 1) * log_units(floor))


def from_linear(intensity: torch.Tensor, floor: float) -> torch.Tensor:
    """Linear intensities clipped at ``floor`` and mapped as clipped_log10 renders."""
    return torch.log(intensity.clamp_min(float(floor))) / log_units(floor) + 1


def background_quantiles(images: torch.Tensor, quantiles: Sequence[float], floor: float,
                         device: torch.device | str | None = None,
                         chunk_cells: int = 1 << 23) -> torch.Tensor:
    """``(N, Q, mass)`` float32 quantiles of each sample's linear intensity (channel 0 of
    clipped_log10 renders) along the x axis, per m/z row, over the columns the run covers
    (any cell above the floor; floor cells count as the floor); 0 for an empty image.
    Computed on ``device`` (default: the images') in chunks of samples
    (``torch.nanquantile`` has a size limit); the result stays there."""
    n, _, m, x = images.shape
    device = images.device if device is None else torch.device(device)
    q = torch.tensor([float(v) for v in quantiles], dtype=torch.float32, device=device)
    step = max(1, int(chunk_cells) // max(m * x, 1))
    parts = []
    for start in range(0, n, step):
        values = images[start:start + step, 0].to(device).float()
        covered = (values > 0).any(dim=1, keepdim=True)  # (b, 1, x)
        linear = torch.where(covered, to_linear(values, floor), torch.nan)
        part = torch.nanquantile(linear, q, dim=-1)  # (Q, b, m)
        parts.append(torch.nan_to_num(part, nan=0.0).permute(1, 0, 2))
    return torch.cat(parts) if parts else torch.zeros(0, len(q), m, device=device)


def intensity_view(batch: torch.Tensor, floor: float, mix: torch.Tensor | None = None,
                   shift: torch.Tensor | None = None) -> torch.Tensor:
    """Channel 0 of clipped_log10 renders minus the linear background ``mix`` (n, mass),
    clipped at the floor and re-logged, then plus the log ``shift`` (a linear factor,
    broadcast to (n, 1, mass, x)) where above the floor, clipped there; cells at (or
    pushed to) the floor are exactly 0. The other channels unchanged."""
    values = batch[:, :1]
    if mix is not None:
        linear = to_linear(values, floor).sub_(mix[:, None, :, None])
        keep = linear > float(floor)
        values = torch.log(linear.clamp_min_(float(floor))).div_(log_units(floor)).add_(1)
    else:
        keep = values > 0
    if shift is not None:
        values = (values + shift).clamp_min_(0)
    if mix is None and shift is None:
        return batch
    values = values.mul_(keep)  # a new tensor here: mix or shift made one
    return values if batch.shape[1] == 1 else torch.cat([values, batch[:, 1:]], dim=1)


@dataclass(frozen=True)
class CachedAugment:
    """The Mars-1 winner's augmentations on the cached render, built from a model's settings
    (:meth:`from_settings`): random scan within a window, per-m/z and global intensity
    scaling, background-quantile mix (all on the batch's device, every draw from the
    generator passed in) and sample mixing by mean or max.

    Order in training: scan (on the cached grid) -> background mix -> scaling -> then the
    loop's time_resize / time_warp -> sample mixing -> mixup. :meth:`plain` is the
    deterministic view of evaluation and prediction (centre columns, mean background mix).
    """

    scan_jitter: int
    scan_stride: int
    floor: float | None
    mass_scale_sigma: float
    global_scale_sigma: float
    quantiles: tuple[float, ...] | None
    mix_p: float
    mix_mode: str

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> CachedAugment:
        """The model's options; a ConfigError names a log-space option set without
        ``render_log_floor`` (``resolve_model`` derives it from a ``log: clipped_log10``
        representation's ``log_floor``)."""
        quantiles = settings.background_mix_quantiles
        needs_floor = [k for k, on in (("mass_scale_sigma", settings.mass_scale_sigma > 0),
                                       ("global_scale_sigma", settings.global_scale_sigma > 0),
                                       ("background_mix_quantiles", bool(quantiles))) if on]
        if needs_floor and settings.render_log_floor is None:
            raise ConfigError(
                f"config key 'models/{settings.name}/{needs_floor[0]}': it works on "
                "clipped_log10 renders and needs their floor, which the model takes from "
                "its representation's log_floor. Fix: give the model a representation with "
                "log: clipped_log10, or turn the option off.")
        return cls(int(settings.scan_jitter), int(settings.scan_stride),
                   None if settings.render_log_floor is None else float(settings.render_log_floor),
                   float(settings.mass_scale_sigma), float(settings.global_scale_sigma),
                   tuple(float(q) for q in quantiles) if quantiles else None,
                   float(settings.sample_mix_p), str(settings.sample_mix_mode))

    @property
    def views(self) -> bool:
        """Whether a random view differs from the plain one (scan, scaling, background)."""
        return (self.scan_jitter > 0 or self.mass_scale_sigma > 0
                or self.global_scale_sigma > 0 or self.quantiles is not None)

    @property
    def active(self) -> bool:
        """Whether training draws anything here (a view or sample mixing)."""
        return self.views or self.mix_p > 0

    @property
    def reshapes(self) -> bool:
        """Whether the plain view differs from the stored images."""
        return self.scan_stride > 1 or self.quantiles is not None

    def width(self, n_x: int) -> int:
        return strided_width(n_x, self.scan_stride)

    def image_shape(self, shape: Sequence[int]) -> tuple[int, int, int]:
        """The ``(C, mass, x)`` the model sees of stored images of ``shape``."""
        c, m, x = (int(v) for v in shape)
        return c, m, self.width(x)

    def background(self, images: torch.Tensor, device: torch.device | str | None = None
                   ) -> torch.Tensor | None:
        """Per-sample background quantiles of ``images``, once per image set, kept on
        ``device`` (None when the mix is off)."""
        if self.quantiles is None:
            return None
        assert self.floor is not None
        return background_quantiles(images, self.quantiles, self.floor, device)

    def view(self, batch: torch.Tensor, background: torch.Tensor | None,
             generator: torch.Generator | None) -> torch.Tensor:
        """A random view (``generator`` on the batch's device) or, with None, the plain one."""
        n, _, _, n_x = batch.shape
        if self.scan_stride > 1 or (self.scan_jitter > 0 and generator is not None):
            batch = take_columns(batch, scan_columns(n, n_x, self.scan_stride, self.scan_jitter,
                                                     generator))
        mix = shift = None
        if self.quantiles is not None and background is not None:
            q = len(self.quantiles)
            if generator is None:
                weights = torch.full((n, q), 1.0 / q, device=batch.device)
            else:  # uniform on the simplex: normalised exponentials
                e = -torch.log(torch.rand(n, q, generator=generator, device=generator.device)
                               .clamp_min(1e-12))
                weights = (e / e.sum(1, keepdim=True)).to(batch.device)
            mix = (weights.unsqueeze(-1) * background.to(batch.device)).sum(1)  # (n, mass)
        if generator is not None and (self.mass_scale_sigma > 0 or self.global_scale_sigma > 0):
            assert self.floor is not None
            m = batch.shape[2]
            octaves = (self.mass_scale_sigma * torch.randn(
                n, 1, m, 1, generator=generator, device=generator.device)
                + self.global_scale_sigma * torch.randn(
                    n, 1, 1, 1, generator=generator, device=generator.device))
            shift = octaves.to(batch.device) * (math.log(2.0) / log_units(self.floor))
        if mix is not None or shift is not None:
            assert self.floor is not None
            batch = intensity_view(batch, self.floor, mix, shift)
        return batch

    def plain(self, batch: torch.Tensor, background: torch.Tensor | None) -> torch.Tensor:
        """The deterministic view of evaluation and prediction."""
        return self.view(batch, background, None) if self.reshapes else batch

    def evaluation_images(self, images: torch.Tensor) -> torch.Tensor:
        """The plain view of a whole image set, its background quantiles taken from it: what
        the model sees of stored images at evaluation (explain and embed read this)."""
        if not self.reshapes:
            return images
        x = images.float()
        return self.plain(x, self.background(x, x.device))

    def mix(self, x: torch.Tensor, y: torch.Tensor, meta: torch.Tensor | None,
            generator: torch.Generator, multiclass: bool
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Sample mixing (:func:`sample_mix`) when ``sample_mix_p`` > 0."""
        if self.mix_p <= 0:
            return x, y, meta
        return sample_mix(x, y, meta, self.mix_p, self.mix_mode, generator, multiclass)


def batch_generator(generator: torch.Generator,
                    device: torch.device | str | None = None) -> torch.Generator:
    """A host generator seeded by one draw from ``generator`` (the loop's seeded,
    checkpointed CPU generator): a batch's random numbers (a few per sample) are drawn from
    it and copied to the batch's device, so the same seed gives the same augmentations on
    every device. ``device`` (the batch's) does not change the draws."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return torch.Generator().manual_seed(seed)
