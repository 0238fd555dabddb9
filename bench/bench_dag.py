"""DAG build at Mars-2 scale: `snakemake -n` over 1,584 runs, 5 models x 5 folds.

    .venv/bin/python bench/bench_dag.py [N_RUNS=1584] [N_MODELS=5] [N_FOLDS=5] [REPEATS=3] [SHARDS=0]

Writes a sample sheet of N_RUNS runs (Mars-2 split sizes, random labels) with a two-line
placeholder CSV per run (the DAG needs every raw run file to exist, not its content), a
config from config/config.yaml with N_MODELS models and N_FOLDS folds (and SHARDS ingest/
render shards; 0 keeps the config's; N_RUNS = one run per shard, the most jobs), then times
`snakemake -n --quiet rules` (parse + DAG build + dry-run summary, process start included)
REPEATS times and prints the job count per rule and the wall times. Target: <= 15 s.
Set PROFILE=1 to also write a cProfile of one dry run to bench/out/dag.prof.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from spectrovision.synth.demo import LABELS, sample_splits, write_tables

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TARGET_S = 15.0
PLACEHOLDER_RUN = b"time,mass,intensity\n0.0,18.0,1.0\n"


def write_sheet(root: Path, n_runs: int, seed: int = 0) -> None:
    """metadata, labels and submission format for n_runs runs, and one tiny file per run."""
    rng = np.random.default_rng(seed)
    splits = sample_splits(n_runs, None)
    ids = [f"S{i:04d}" for i in range(n_runs)]
    paths = [f"{split}_features/{sample_id}.csv" for sample_id, split in zip(ids, splits)]
    for split in set(splits):
        (root / f"{split}_features").mkdir(parents=True, exist_ok=True)
    for path in paths:
        (root / path).write_bytes(PLACEHOLDER_RUN)
    meta = pd.DataFrame({"sample_id": ids, "split": splits,
                         "derivatized": [1 if d else None for d in rng.random(n_runs) < 1 / 3],
                         "features_path": paths})
    labels = pd.DataFrame(rng.integers(0, 2, size=(n_runs, len(LABELS))), columns=list(LABELS))
    labels.insert(0, "split", splits)
    labels.insert(0, "sample_id", ids)
    write_tables(root, meta, labels)


def write_config(workdir: Path, data_dir: Path, n_models: int, n_folds: int, shards: int
                 ) -> Path:
    """config/config.yaml with the bench data, n_models copies of its first model, n_folds
    and (when > 0) shards."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["data"]["dir"] = str(data_dir)
    cfg["data"].pop("submission_format", None)
    cfg["qc"]["check_md5"] = False
    cfg["results"] = "results"
    cfg["folds"]["n_folds"] = n_folds
    if shards > 0:
        cfg["workflow"]["shards"] = shards
    first = next(iter(cfg["models"].values()))
    heads = ["pool", "time_avg"]
    cfg["models"] = {f"m{i}": {**first, "head": heads[i % len(heads)]} for i in range(n_models)}
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def dry_run(workdir: Path, config: Path, profile: Path | None = None
            ) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system: less sensitive to a busy machine) and output."""
    cmd = [SNAKEMAKE, "-n", "--quiet", "rules", "--cores", "2", "-s", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(config)]
    if profile is not None:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), *cmd]
    start, cpu = time.perf_counter(), cpu_seconds()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed, cpu, proc.stdout + proc.stderr


def job_counts(text: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count (with 'total')."""
    counts = {}
    for line in text.splitlines():
        if m := re.match(r"^(\w+)\s+(\d+)\s*$", line.strip()):
            counts[m.group(1)] = int(m.group(2))
    return counts


def main(n_runs: int, n_models: int, n_folds: int, repeats: int, shards: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        write_sheet(workdir / "data", n_runs)
        config = write_config(workdir, workdir / "data", n_models, n_folds, shards)
        shards = yaml.safe_load(config.read_text())["workflow"]["shards"]
        print(f"sample sheet + {n_runs} placeholder runs: {time.perf_counter() - start:.1f} s")
        times, cpus = [], []
        text = ""
        for _ in range(repeats):
            elapsed, cpu, text = dry_run(workdir, config)
            times.append(elapsed)
            cpus.append(cpu)
        counts = job_counts(text)
        total = counts.pop("total", sum(counts.values()))
        print(f"snakemake -n: {n_runs} runs in {shards} shards, {n_models} models x {n_folds} "
              f"folds -> {total} jobs")
        print("  per rule: " + ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items())))
        print(f"  wall s: {', '.join(f'{t:.1f}' for t in times)} (best {min(times):.1f}, "
              f"target <= {TARGET_S:.0f}) -> {'OK' if min(times) <= TARGET_S else 'SLOW'}")
        print(f"  CPU s (user+sys): {', '.join(f'{t:.1f}' for t in cpus)}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if os.environ.get("PROFILE") == "1":
            out = REPO / "bench" / "out"
            out.mkdir(exist_ok=True)
            shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
            dry_run(workdir, config, profile=out / "dag.prof")
            print(f"  cProfile: {out / 'dag.prof'} (python -m pstats)")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    defaults = [1584, 5, 5, 3, 0]
    main(*(args + defaults[len(args):]))
