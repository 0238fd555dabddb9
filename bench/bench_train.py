"""Input pipeline vs training step, and training throughput, for one model on the CPU.

The pipeline is what train.py does per batch before the model sees it: index the
in-memory float16 images, convert to float32, random batch-wise time resize (and time
warp, mixup when on). The step is forward + backward + AdamW on an already prepared batch.
Both are timed in the same process on the same batches. Target: pipeline <= 5% of a step.
Then the step again, on the same prepared batches, with the model and its batches in the
contiguous and the channels_last memory format (two copies of the model, steps
interleaved): the ratio is what the CPU gains from ``channels_last`` (default on).

Usage: .venv/bin/python bench/bench_train.py [backbone] [n_mass] [n_x] [batch] [n_batches]
(defaults: resnet18 256 192 32 6). Numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spectrovision.learn.augment import mixup, random_time_width, resize_time, time_warp  # noqa: E402
from spectrovision.learn.losses import bce_loss  # noqa: E402
from spectrovision.learn.models import create_model  # noqa: E402
from spectrovision.learn.settings import ModelSettings  # noqa: E402


def main() -> None:
    args = sys.argv[1:]
    backbone = args[0] if args else "resnet18"
    n_mass, n_x, batch, n_batches = (int(a) for a in (args[1:5] + ["256", "192", "32", "6"][len(args[1:5]):]))
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    images = (torch.rand(batch * n_batches, 2, n_mass, n_x) * 0.5).half()
    labels = (torch.rand(batch * n_batches, 9) > 0.7).float()
    gen = torch.Generator().manual_seed(0)
    settings = ModelSettings.with_defaults({"name": "bench", "representation": "bench",
                                            "backbone": backbone, "head": "time_avg"})
    model = create_model(settings, (2, n_mass, n_x), 9)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = bce_loss()
    lo, hi = int(n_x * 2 / 3), int(n_x * 4 / 3)

    def pipeline(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randperm(len(images), generator=gen)[:batch]
        xb, yb = images[idx].float(), labels[idx]
        xb = resize_time(xb, random_time_width(lo, hi, gen))
        xb = time_warp(xb, [0.5, 2.0], gen)
        xb, yb, _ = mixup(xb, yb, 0.2, gen)
        return xb, yb

    def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        out = model.forward_heads(xb)
        loss = loss_fn(out["logits"], yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    step(*pipeline(0))  # warm-up
    pipe_t, step_t = [], []
    for i in range(n_batches):
        t0 = time.perf_counter()
        xb, yb = pipeline(i)
        t1 = time.perf_counter()
        step(xb, yb)
        t2 = time.perf_counter()
        pipe_t.append(t1 - t0)
        step_t.append(t2 - t1)
    p, s = statistics.median(pipe_t), statistics.median(step_t)
    print(f"{backbone} {n_mass}x{n_x} batch {batch}, {threads} threads, {n_batches} batches")
    print(f"input pipeline {p * 1e3:.1f} ms/batch, step {s * 1e3:.0f} ms/batch, "
          f"pipeline/step = {100 * p / s:.2f}% (target <= 5%)")
    print(f"training throughput {batch / (p + s):.1f} samples/s")
    print(memory_format_line(model, [pipeline(i) for i in range(n_batches)], loss_fn))


def memory_format_line(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
                       loss_fn: torch.nn.Module) -> str:
    """Median step time of two copies of ``model``, contiguous and channels_last, stepping
    in turn on the same batches (each after one warm-up step)."""
    last = torch.channels_last
    copies = {"contiguous": (copy.deepcopy(model), torch.contiguous_format),
              "channels_last": (copy.deepcopy(model).to(memory_format=last), last)}
    optimisers = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, (m, _) in copies.items()}
    times: dict[str, list[float]] = {k: [] for k in copies}
    for i, (xb, yb) in enumerate([batches[0]] + batches):
        for key, (net, fmt) in copies.items():
            x = xb.contiguous(memory_format=fmt)
            t0 = time.perf_counter()
            loss = loss_fn(net.forward_heads(x)["logits"], yb)
            optimisers[key].zero_grad(set_to_none=True)
            loss.backward()
            optimisers[key].step()
            if i:  # the first batch warms both copies up
                times[key].append(time.perf_counter() - t0)
    plain, cl = (statistics.median(times[k]) for k in ("contiguous", "channels_last"))
    return (f"step contiguous {plain * 1e3:.0f} ms/batch, channels_last {cl * 1e3:.0f} "
            f"ms/batch: channels_last {plain / cl:.2f}x")


if __name__ == "__main__":
    main()
