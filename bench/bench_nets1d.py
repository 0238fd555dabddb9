"""Training throughput of the 1-D backbones against a timm 2-D CNN, on the CPU, in one run.

One training step (forward + backward + AdamW, head ``pool``, 10 labels, batch-wise random
time resize as train.py does) of each of ``conv1d``, ``massconv1d``, ``mzconv1d``, ``gru1d``,
``transformer1d`` and ``resnet10t`` at a Mars-1-like image shape (1 x 100 mass rows x 110 temperature columns),
on the same batches, 1 thread; samples/s are medians over the timed batches, ratios are to
resnet10t.

Usage: .venv/bin/python bench/bench_nets1d.py [n_mass] [n_x] [batch] [n_batches]
(defaults: 100 110 64 8). Numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spectrovision.learn.augment import random_time_width, resize_time  # noqa: E402
from spectrovision.learn.losses import bce_loss  # noqa: E402
from spectrovision.learn.models import create_model, model_summary  # noqa: E402
from spectrovision.learn.settings import ModelSettings  # noqa: E402

BACKBONES = ("conv1d", "massconv1d", "mzconv1d", "gru1d", "transformer1d", "resnet10t")


def samples_per_s(backbone: str, images: torch.Tensor, labels: torch.Tensor, batch: int,
                  n_batches: int) -> tuple[float, int]:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    settings = ModelSettings.with_defaults({"name": "bench", "representation": "bench",
                                            "backbone": backbone, "head": "pool"})
    model = create_model(settings, tuple(images.shape[1:]), labels.shape[1]).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = bce_loss()
    n_x = images.shape[-1]
    times = []
    for i in range(n_batches + 1):  # the first batch warms up
        t0 = time.perf_counter()
        idx = torch.randperm(len(images), generator=gen)[:batch]
        xb = resize_time(images[idx].float(), random_time_width(n_x - 10, n_x + 10, gen))
        loss = loss_fn(model.forward_heads(xb)["logits"], labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times), model_summary(model)["parameters"]


def main() -> None:
    args = sys.argv[1:]
    n_mass, n_x, batch, n_batches = (int(a) for a in (args + ["100", "110", "64", "8"][len(args):]))
    torch.set_num_threads(1)
    torch.manual_seed(0)
    images = torch.rand(4 * batch, 1, n_mass, n_x).half()
    labels = (torch.rand(4 * batch, 10) > 0.8).float()
    print(f"1x{n_mass}x{n_x}, batch {batch}, {n_batches} timed batches, "
          f"{torch.get_num_threads()} thread")
    rates = {b: samples_per_s(b, images, labels, batch, n_batches) for b in BACKBONES}
    ref = rates["resnet10t"][0]
    print("| backbone | parameters | training samples/s | x resnet10t |")
    print("|---|---|---|---|")
    for name, (rate, params) in rates.items():
        print(f"| {name} | {params:,} | {rate:,.0f} | {rate / ref:.1f} |")


if __name__ == "__main__":
    main()
