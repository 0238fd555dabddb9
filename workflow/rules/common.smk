# What every stage shares, in pipeline order: the validated config, the sample sheet, the
# parse-time checks, shared wildcard constraints, code versions and shared paths. Each
# stage's own input functions live beside its rules (workflow/rules/functions/<stage>.smk).
import os
import re
from pathlib import Path

# The workflow's library is the installed package (`make install`), the same one that its
# scripts and cluster jobs import.
from spectrovision.apply.manifest import (
    applied_config,
    check_applied_labels,
    read_manifest,
)
from spectrovision.config.schema import validate_config
from spectrovision.data.layouts import get_layout, layout_code_version
from spectrovision.data.sheet import load_sample_sheet
from spectrovision.learn.cost import (
    SCORE_PATH_PRIORITY,
    prep_priority,
    render_priority,
    train_priority,
)
from spectrovision.parse_checks import check_run
from spectrovision.provenance.code import script_code_version

# --- config ---
# validated against the packaged schema; model defaults merge in resolve_model
# (schema < model_defaults < model)
CFG = validate_config(config)
# apply mode (trained_results set): the trained run's recipe, nothing of its own to train
TRAINED = CFG["trained_results"]
MANIFEST = read_manifest(TRAINED) if TRAINED else None
if MANIFEST is not None:
    CFG = applied_config(CFG, config, MANIFEST)
RESULTS = CFG["results"]


def res(*parts):
    """A path under the results folder."""
    return os.path.join(RESULTS, *parts)


# --- sample sheet ---
SHEET = load_sample_sheet(CFG)
LABELS = SHEET.attrs["labels"]
if MANIFEST is not None:
    LABELS = check_applied_labels(LABELS, MANIFEST, TRAINED)
SAMPLES = list(SHEET["sample_id"])
SPLITS = sorted(SHEET["split"].unique())
SHARDS = sorted(int(s) for s in SHEET["shard"].unique())
# splits that hold labelled samples: the only stacks training reads
LABELLED_SPLITS = sorted(SHEET.loc[SHEET["labelled"], "split"].unique())
LABELLED = list(SHEET.loc[SHEET["labelled"], "sample_id"])
UNLABELLED = list(SHEET.loc[~SHEET["labelled"], "sample_id"])
# the data block as the sample sheet reads it (submission_format only reaches submission)
SHEET_DATA = {k: v for k, v in CFG["data"].items() if k != "submission_format"}
# data.layout names one registered layout (spectrovision.data.layouts): its class ingests,
# summarises and renders, and each stage's code version is its own modules' closure.
LAYOUT = get_layout(CFG["data"]["layout"])

# --- what the run builds, and every parse-time check (one call) ---
REPRESENTATIONS = sorted(CFG["representations"])
FOLDS = list(range(CFG["folds"]["n_folds"]))
BASELINES = list(CFG["baselines"])
TABULAR = sorted(CFG["tabular"])
# Every model is also built and run once on its representation's image shape (main
# process only, cached under results/checks/): a backbone that cannot take these images
# fails now, naming the model, not when its train job starts.
CHECKED = check_run(
    CFG,
    list(SHEET.columns),
    len(LABELS),
    build_models=workflow.is_main_process,
    build_cache=res("checks", "models.json"),
)
MODELS = CHECKED.models  # resolved settings: schema < model_defaults < model
BASELINE_REPRESENTATIONS = CHECKED.baseline_representations
TABULAR_SETTINGS = CHECKED.tabular
MEMBERS = list(MODELS) + BASELINES + TABULAR


# --- shared wildcard constraints ---
wildcard_constraints:
    shard=r"\d+",
    fold=r"\d+",
    model=r"[A-Za-z0-9_-]+",
    rep=r"[A-Za-z0-9_-]+",
    split=r"[A-Za-z0-9_-]+",


MODEL_PATTERN = "|".join(map(re.escape, MODELS)) or "(?!)"


# --- code versions ---
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


def script_code(name):
    """Code version of a workflow script's library code (its whole import closure)."""
    return script_code_version(SCRIPTS / f"{name}.py")


def layout_code(script, stage):
    """Code version of a layout stage's job: the script's import closure plus the
    layout's modules for the stage (editing one layout's code re-runs only its jobs)."""
    return f"{script_code(script)}+{layout_code_version(LAYOUT.name, stage)}"


# --- shared paths and settings ---
# Each shard's rows, split once and without SHEET.attrs: filtering SHEET itself makes pandas
# deep-copy its attrs (label table included) on every call, seconds over 1,000 shards.
_PLAIN_SHEET = SHEET.copy(deep=False)
_PLAIN_SHEET.attrs = {}
_SHARD_TABLES = {int(s): t for s, t in _PLAIN_SHEET.groupby("shard", sort=True)}


def shard_table(shard):
    """One shard's rows of the sample sheet (empty for an unknown shard)."""
    return _SHARD_TABLES.get(int(shard), _PLAIN_SHEET.iloc[:0])


def get_sample_sheet_files():
    """The metadata and label files the sample sheet is read from (edits re-run the user)."""
    root = Path(CFG["data"]["dir"])
    files = [root / CFG["data"]["metadata_file"]]
    files += [root / f for f in CFG["data"]["labels_files"] if (root / f).exists()]
    return [str(f) for f in files]


def render_view(rep):
    """How a representation's images are drawn in reports: its log mode and axes (m/z
    rows, x extent and labels, a plain dict), as its layout says (rep None: no
    representation is configured)."""
    return LAYOUT.render_view(None if rep is None else CFG["representations"][rep])


def model_settings(model):
    """A model's resolved settings (schema defaults < model_defaults < its own keys)."""
    return MODELS[model]


def get_train_priority(wildcards):
    """Priority of a model's train and predict jobs: its relative cost (longest first)."""
    return train_priority(MODELS[wildcards.model])


def get_render_priority(wildcards):
    """Priority of a representation's render and stack jobs: above the costliest train
    job that reads them (Snakemake's priorities do not reach upstream jobs)."""
    return render_priority(MODELS, wildcards.rep)


# ingest, the labelled sheet and folds: above every train job
PREP_PRIORITY = prep_priority(MODELS)


def get_model_stacks(ext, splits=None):
    """Input function: the stacked renders (ext npy) or their id lists (csv) of ``splits``
    (default: every split), for the representation the model reads."""

    def inputs(wildcards):
        rep = MODELS[wildcards.model]["representation"]
        return [
            res("render", rep, f"stack_{split}.{ext}") for split in splits or SPLITS
        ]

    return inputs


def fitted_member_inputs(rep):
    """Folds, sheet files and the stacked renders (every split) of ``rep`` (None = none)
    that a baseline or tabular member reads."""
    stacks = [res("render", rep, f"stack_{s}.npy") for s in SPLITS] if rep else []
    return {
        "folds": res("folds.csv"),
        "sheet": get_sample_sheet_files(),
        "stacks": stacks,
        "stack_ids": [s.removesuffix(".npy") + ".csv" for s in stacks],
    }


# --- what the default target `all` (in the Snakefile) builds ---
def get_final_outputs():
    """What the default target (all) builds, i.e. everything that exists as a stage so far."""
    outputs = [res("qc", "qc_summary.md")]
    outputs += expand(
        res("render", "{rep}", "stack_{split}.npy"), rep=REPRESENTATIONS, split=SPLITS
    )
    if MANIFEST is not None:
        return outputs + [res("predictions.csv")] + get_report_outputs()
    outputs.append(res("folds.csv"))
    if MODELS or TABULAR:
        outputs += [res("submission.csv"), res("trained_manifest.json")]
    outputs += get_report_outputs()
    outputs += get_analysis_outputs()
    return outputs
