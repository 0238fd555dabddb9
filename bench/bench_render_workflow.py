"""All renders of N Mars-2-sized runs (600k rows each) through Snakemake (render_shard +
stack_render of the real Snakefile, ingest already satisfied: the cached Parquet runs are
written directly) against the same renders and stacks in one Python process.
Targets: Snakemake <= 1.3 x one process, and <= 2 minutes on the 2-core VM.

Usage: .venv/bin/python bench/bench_render_workflow.py [n_runs] [shards] [distinct] [cores]
(defaults 1600 16 32 2). ``distinct`` synthetic runs are generated and hard-linked to the
n_runs sample files (every file is still read and rendered; it keeps the set-up short).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from synthetic_runs import cache_table, synthetic_run, write_cache  # noqa: E402

from spectrovision.data.sheet import shard_of  # noqa: E402

REPRESENTATION = {"n_mass": 256, "n_x": 192, "derivatized_channel": True}

ONE_PROCESS = """
import sys, pandas as pd
from pathlib import Path
from spectrovision.render.runs import render_shard, stack_splits
from synthetic_runs import render_spec
work, rep = Path(sys.argv[1]), sys.argv[2]
sheet = pd.read_csv(work / "sheet.csv", dtype={"sample_id": str})
spec = render_spec(**eval(sys.argv[3]))
out = work / "one_process" / rep
dirs = {}
for shard, group in sheet.groupby("shard"):
    dirs[shard] = out / f"shard{shard}"
    render_shard(work / "results" / "runs" / f"shard{shard}",
                 group[["sample_id", "derivatized"]].to_dict("records"), dirs[shard], spec)
members = {s: g[["sample_id", "shard"]].values.tolist() for s, g in sheet.groupby("split")}
stack_splits(dirs, members, {s: (out / f"stack_{s}.npy", out / f"stack_{s}.csv")
                             for s in members})
"""


def write_inputs(work: Path, n_runs: int, shards: int, distinct: int) -> pd.DataFrame:
    """Data folder, config, and the cached runs of every shard (hard links)."""
    rng = np.random.default_rng(0)
    ids = [f"S{i:04d}" for i in range(n_runs)]
    split = rng.choice(["train", "val", "test"], n_runs, p=[809 / 1584, 312 / 1584, 463 / 1584])
    sheet = pd.DataFrame({"sample_id": ids, "split": split,
                          "derivatized": rng.integers(0, 2, n_runs),
                          "shard": [shard_of(s, shards) for s in ids]})
    data = work / "data"
    data.mkdir(parents=True)
    pd.DataFrame({"sample_id": ids, "split": split,
                  "derivatized": [1 if d else None for d in sheet["derivatized"]],
                  "features_path": [f"f/{s}.csv" for s in ids]}).to_csv(data / "metadata.csv",
                                                                        index=False)
    train = sheet[sheet["split"] == "train"]
    pd.DataFrame({"sample_id": train["sample_id"], "x": rng.integers(0, 2, len(train))}).to_csv(
        data / "train_labels.csv", index=False)
    config = {"data": {"dir": "data", "submission_format": None},
              "workflow": {"shards": shards}, "representations": {"bench": REPRESENTATION},
              "models": {}, "baselines": []}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    sheet.to_csv(work / "sheet.csv", index=False)
    sources = []
    for k in range(distinct):
        sources.append(work / "distinct" / f"run{k}.parquet")
        sources[-1].parent.mkdir(exist_ok=True)
        write_cache(sources[-1], cache_table(synthetic_run(rng)))
    for row, (sample_id, shard) in enumerate(zip(sheet["sample_id"], sheet["shard"])):
        target = work / "results" / "runs" / f"shard{shard}" / f"{sample_id}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(sources[row % distinct], target)
    return sheet


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "bench")])})
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return elapsed


def main(n_runs: int = 1600, shards: int = 16, distinct: int = 32, cores: int = 2) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-render-"))
    try:
        start = time.perf_counter()
        sheet = write_inputs(work, n_runs, shards, distinct)
        print(f"set-up: {n_runs} runs ({distinct} distinct, 600k rows each) in "
              f"{sheet['shard'].nunique()} shards, {time.perf_counter() - start:.0f} s")
        bin_dir = Path(sys.executable).parent
        one = timed([sys.executable, "-c", ONE_PROCESS, str(work), "bench",
                     repr(REPRESENTATION)], work)
        targets = [f"results/render/bench/stack_{s}.npy" for s in sorted(sheet["split"].unique())]
        smk = timed([str(bin_dir / "snakemake"), "-s", str(REPO / "Snakefile"), "--configfile",
                     "config.yaml", "--cores", str(cores), "--allowed-rules", "render_shard",
                     "stack_render", "--", *targets], work)
        for split in sorted(sheet["split"].unique()):
            a = np.load(work / "results/render/bench" / f"stack_{split}.npy", mmap_mode="r")
            b = np.load(work / "one_process/bench" / f"stack_{split}.npy", mmap_mode="r")
            assert a.shape == b.shape and np.array_equal(a, b), split
        jobs = {rule: [pd.read_csv(f, sep="\t")["s"].iloc[0]
                       for f in (work / "benchmarks/render/bench").glob(pattern)]
                for rule, pattern in (("render_shard", "shard*.tsv"), ("stack_render", "stack.tsv"))}
        print(f"one Python process: {one:.1f} s ({one / n_runs * 1e3:.1f} ms per run)")
        print("Snakemake jobs: " + ", ".join(
            f"{rule} {len(t)} jobs, {sum(t):.1f} s in all (longest {max(t):.1f} s)"
            for rule, t in jobs.items()))
        print(f"Snakemake --cores {cores}, {shards} shards: {smk:.1f} s "
              f"= {smk / one:.2f} x one process; stacks identical")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:5]))
