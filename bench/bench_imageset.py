"""Memory and time of loading a training fold's images (issue 18, the ice-core scale).

Writes one ``(N, 1, 128, 128)`` stack (``--dtype`` float16, the schema's render default,
or float32) with its id CSV, then in a fresh process per method loads a fold's training
and validation images (80% / 20%, scattered rows) as ``run_train`` does, and reports the
process's peak resident memory above what it held after importing the libraries, against
the float16 tensor that training keeps:
- ``reader``: today's ``learn.imageset.open_stacks(...).select(ids)`` (plain file reads
  into a preallocated tensor, chunk by chunk);
- ``before``: the loader before issue 18 (``np.asarray(memmap[rows], float16)`` per
  stack, concatenated, then ``select`` of the train and validation ids: three copies).

Usage: .venv/bin/python bench/bench_imageset.py N [N ...] [--dtype float16|float32]
       [--methods reader before] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, pandas as pd, torch
from spectrovision.learn.imageset import ImageSet, open_stacks

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

stack, ids_csv, method = sys.argv[2], sys.argv[3], sys.argv[4]
ids = pd.read_csv(ids_csv, dtype={"sample_id": str})["sample_id"].tolist()
rng = np.random.default_rng(0)
order = rng.permutation(len(ids))
train = [ids[i] for i in sorted(order[: int(0.8 * len(ids))])]
val = [ids[i] for i in sorted(order[int(0.8 * len(ids)):])]
base = rss_kb()
t0 = time.perf_counter()
if method == "reader":
    index = open_stacks([stack], [ids_csv])
    train_x, val_x = index.select(train), index.select(val)
else:
    mm = np.load(stack, mmap_mode="r")
    keep = set(train) | set(val)
    rows = [i for i, s in enumerate(ids) if s in keep]
    images = ImageSet([ids[i] for i in rows],
                      torch.from_numpy(np.concatenate([np.asarray(mm[rows], dtype=np.float16)])))
    train_x, val_x = images.select(train), images.select(val)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kept = (train_x.nelement() + val_x.nelement()) * 2
print(json.dumps({"seconds": seconds, "base_kb": base, "peak_kb": peak,
                  "kept_bytes": kept, "held_now_kb": rss_kb()}))
"""


def write_stack(folder: Path, n: int, dtype: str) -> tuple[Path, Path]:
    stack = folder / f"stack_{n}_{dtype}.npy"
    ids = folder / f"stack_{n}_{dtype}.csv"
    if not stack.exists():
        out = np.lib.format.open_memmap(stack, mode="w+", dtype=dtype, shape=(n, 1, 128, 128))
        rng = np.random.default_rng(n)
        for start in range(0, n, 5000):
            stop = min(start + 5000, n)
            out[start:stop] = rng.random((stop - start, 1, 128, 128), dtype=np.float32)
        out.flush()
        del out
        ids.write_text("sample_id\n" + "".join(f"P{i:07d}\n" for i in range(n)))
    return stack, ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="+", type=int)
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    parser.add_argument("--methods", nargs="+", default=["reader", "before"])
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="bench_imageset_"))
    folder.mkdir(parents=True, exist_ok=True)
    print("| images | stack on disk | method | load s | peak above imports | kept tensor | ratio |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        stack, ids = write_stack(folder, n, args.dtype)
        for method in args.methods:
            # drop the stack from the page cache's accounting: each method runs in a fresh process
            proc = subprocess.run([sys.executable, "-c", CHILD, str(SRC), str(stack), str(ids),
                                   method], capture_output=True, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            above = (r["peak_kb"] - r["base_kb"]) * 1024
            print(f"| {n:,} | {stack.stat().st_size / 1e9:.2f} GB {args.dtype} | {method} | "
                  f"{r['seconds']:.1f} | {above / 1e9:.2f} GB | {r['kept_bytes'] / 1e9:.2f} GB | "
                  f"{above / r['kept_bytes']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
