"""Cost of the cached-render augmentations per training batch, as a share of a training step.

All of them together (random scan within +-jitter columns with a column stride, per-m/z and
global intensity scaling, background-quantile mix, sample mixing by max; the per-sample
background quantiles are computed once beforehand, as train_model does) against one
training step (forward + backward + AdamW, head pool, 10 labels) of ``conv1d`` (batch 64)
and ``resnet10t`` (batch 16) at the Mars-1 shape: 100 m/z rows x 110 model columns, fed
either by a 110-column render (stride 1, jitter 4) or a 550-column fine render (stride 5,
jitter 8: the winner's +-16 degC on a 2 degC render). 1 thread; medians over the timed
batches, all in one run.

Usage: .venv/bin/python bench/bench_augment.py [n_batches] (default 8). Numbers go to
docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spectrovision.learn.augment import CachedAugment, batch_generator  # noqa: E402
from spectrovision.learn.losses import bce_loss  # noqa: E402
from spectrovision.learn.models import create_model  # noqa: E402
from spectrovision.learn.settings import ModelSettings  # noqa: E402

CASES = (("conv1d", 64), ("resnet10t", 16))
RENDERS = ((110, 1, 4), (550, 5, 8))  # cached columns, scan_stride, scan_jitter
N_MASS, N_LABELS = 100, 10


def settings(backbone: str, stride: int, jitter: int) -> ModelSettings:
    return ModelSettings.with_defaults({
        "name": "bench", "representation": "bench", "backbone": backbone, "head": "pool",
        "time_resize": None, "scan_jitter": jitter, "scan_stride": stride,
        # resolve_model's value for a log: clipped_log10 representation, log_floor 1e-4
        "render_log_floor": 1e-4, "mass_scale_sigma": 0.1, "global_scale_sigma": 0.05,
        "background_mix_quantiles": [0.001, 0.05, 0.1, 0.2], "sample_mix_p": 0.5,
        "sample_mix_mode": "max"})


def measure(backbone: str, batch: int, n_x: int, stride: int, jitter: int,
            n_batches: int) -> tuple[float, float, float]:
    """Median seconds of the augmentations and of a training step, and the background
    quantiles' one-off seconds for the whole (n_batches x batch) image set."""
    torch.manual_seed(0)
    typed = settings(backbone, stride, jitter)
    augment = CachedAugment.from_settings(typed)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n_batches * batch, 1, N_MASS, n_x, generator=g).half()
    labels = (torch.rand(len(images), N_LABELS, generator=g) > 0.8).float()
    t0 = time.perf_counter()
    background = augment.background(images)
    quantile_s = time.perf_counter() - t0
    model = create_model(typed, augment.image_shape(images.shape[1:]), N_LABELS).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = bce_loss()
    aug_s, step_s = [], []
    for i in range(n_batches + 1):  # batch 0 warms up
        idx = torch.arange(i % n_batches * batch, (i % n_batches + 1) * batch)
        xb, yb = images[idx].float(), labels[idx]
        t0 = time.perf_counter()
        gen = batch_generator(g, "cpu")
        xb = augment.view(xb, background[idx], gen)
        xb, yb, _ = augment.mix(xb, yb, None, gen, multiclass=False)
        t1 = time.perf_counter()
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if i:
            aug_s.append(t1 - t0)
            step_s.append(t2 - t1)
    return statistics.median(aug_s), statistics.median(step_s), quantile_s


def main() -> None:
    n_batches = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    torch.set_num_threads(1)
    print("| net | batch | cached render -> model columns | augmentations / batch | "
          "training step | share | background quantiles (once, per 1,000 images) |")
    print("|---|---|---|---|---|---|---|")
    for backbone, batch in CASES:
        for n_x, stride, jitter in RENDERS:
            aug, step, quant = measure(backbone, batch, n_x, stride, jitter, n_batches)
            per_1000 = quant / (n_batches * batch) * 1000
            print(f"| {backbone} | {batch} | {n_x} -> {n_x // stride} (stride {stride}, "
                  f"jitter {jitter}) | {aug * 1e3:.2f} ms | {step * 1e3:.1f} ms | "
                  f"{100 * aug / step:.1f}% | {per_1000:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
