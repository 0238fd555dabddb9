# Shared by every stage: config validation, the sample sheet, paths and input functions.
# Functions live here only; the stage files hold rules.
import os
import sys
from pathlib import Path

from snakemake.utils import validate

# The workflow always runs its own library (also on cluster nodes), whatever is installed.
_SRC = str(Path(workflow.basedir) / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_SRC, os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, _SRC)

from spectrovision.config import resolve_model, validate_config
from spectrovision.datasets import load_sample_sheet
from spectrovision.provenance import code_version


validate(config, schema="../schemas/config.schema.yaml")
CFG = validate_config(config)
RESULTS = CFG["results"]
SHEET = load_sample_sheet(CFG)
LABELS = SHEET.attrs["labels"]
SAMPLES = list(SHEET["sample_id"])
SPLITS = sorted(SHEET["split"].unique())
SHARDS = sorted(int(s) for s in SHEET["shard"].unique())
REPRESENTATIONS = sorted(CFG["representations"])
MODELS = {name: resolve_model(CFG, name) for name in sorted(CFG["models"])}
FOLDS = list(range(CFG["folds"]["n_folds"]))
BASELINES = list(CFG["baselines"])
ENVS = str(Path(workflow.basedir) / "envs")


wildcard_constraints:
    shard=r"\d+",
    fold=r"\d+",
    model=r"[A-Za-z0-9_-]+",
    rep=r"[A-Za-z0-9_-]+",
    split=r"[A-Za-z0-9_-]+",


def res(*parts):
    """A path under the results folder."""
    return os.path.join(RESULTS, *parts)


def shard_samples(shard):
    return list(SHEET.loc[SHEET["shard"] == int(shard), "sample_id"])


def get_shard_raw_runs(wildcards):
    """Raw run files of one ingest shard."""
    return list(SHEET.loc[SHEET["shard"] == int(wildcards.shard), "features_path"])


def sheet_records(shard=None):
    """Sample-sheet rows (as dicts) that ingest needs, for one shard or all."""
    table = SHEET if shard is None else SHEET[SHEET["shard"] == int(shard)]
    cols = [c for c in table.columns if c not in ("labelled", "shard")]
    return table[cols].to_dict(orient="records")


def get_final_outputs():
    """What `rule all` builds: everything that exists as a stage so far."""
    outputs = [res("qc", "qc_summary.md"), res("folds.csv")]
    outputs += expand(res("render", "{rep}", "stack_{split}.npy"), rep=REPRESENTATIONS, split=SPLITS)
    if MODELS:
        outputs.append(res("submission.csv"))
    return outputs
