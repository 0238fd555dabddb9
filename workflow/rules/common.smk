# Shared by every stage: config validation, the sample sheet, paths and input functions.
# Functions live here only; the stage files hold rules.
import dataclasses
import os
import re
from pathlib import Path

# The workflow's library is the installed package (`make install`), the same one that its
# scripts and cluster jobs import.
from spectrovision.apply.manifest import (
    applied_config,
    applied_members,
    check_applied_labels,
    member_entries,
    read_manifest,
    recipe_of,
)
from spectrovision.config.checks import (
    analysis_model,
    check_config,
    novelty_representation,
)
from spectrovision.config.schema import load_schema, resolve_model, validate_config
from spectrovision.config.typed import as_dict
from spectrovision.data.layouts import get_layout, layout_code_version
from spectrovision.data.metadata import check_model_metadata
from spectrovision.data.sheet import labelled_table, load_sample_sheet, run_columns
from spectrovision.ensemble.baselines import baseline_representation
from spectrovision.ensemble.rows import ENSEMBLE_ROWS
from spectrovision.ensemble.tabular import resolve_tabular
from spectrovision.learn.preflight import check_models_build
from spectrovision.provenance.code import script_code_version

# validated against the packaged schema; model defaults merge in resolve_model
# (schema < model_defaults < model)
CFG = validate_config(config)
# apply mode (trained_results set): the trained run's recipe, nothing of its own to train
TRAINED = CFG["trained_results"]
MANIFEST = read_manifest(TRAINED) if TRAINED else None
if MANIFEST is not None:
    CFG = applied_config(CFG, config, MANIFEST)
RESULTS = CFG["results"]
SHEET = load_sample_sheet(CFG)
LABELS = SHEET.attrs["labels"]
if MANIFEST is not None:
    LABELS = check_applied_labels(LABELS, MANIFEST, TRAINED)
SAMPLES = list(SHEET["sample_id"])
SPLITS = sorted(SHEET["split"].unique())
SHARDS = sorted(int(s) for s in SHEET["shard"].unique())
# splits that hold labelled samples: the only stacks training reads
LABELLED_SPLITS = sorted(SHEET.loc[SHEET["labelled"], "split"].unique())
# the labelled samples (ids, split, metadata, labels) as plain values: the labelled_sheet
# rule writes them, so adding unlabelled runs to metadata.csv re-runs nothing that trains
LABELLED_TABLE = labelled_table(SHEET)
# the data block as the sample sheet reads it (submission_format only reaches submission)
SHEET_DATA = {k: v for k, v in CFG["data"].items() if k != "submission_format"}
REPRESENTATIONS = sorted(CFG["representations"])
_SCHEMA = load_schema()  # parsed once, not once per model
MODELS = {name: resolve_model(CFG, name, _SCHEMA) for name in sorted(CFG["models"])}
FOLDS = list(range(CFG["folds"]["n_folds"]))
BASELINES = list(CFG["baselines"])
TABULAR = sorted(CFG["tabular"])
check_config(CFG, MODELS, reserved=ENSEMBLE_ROWS)  # config does not import the ensemble
ENVS = str(Path(workflow.basedir) / "envs")
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


def script_code(name):
    """Code version of a workflow script's library code (its whole import closure)."""
    return script_code_version(SCRIPTS / f"{name}.py")


def res(*parts):
    """A path under the results folder."""
    return os.path.join(RESULTS, *parts)


# Each shard's rows, split once and without SHEET.attrs: filtering SHEET itself makes pandas
# deep-copy its attrs (label table included) on every call, seconds over 1,000 shards.
_PLAIN_SHEET = SHEET.copy(deep=False)
_PLAIN_SHEET.attrs = {}
_SHARD_TABLES = {int(s): t for s, t in _PLAIN_SHEET.groupby("shard", sort=True)}


def shard_table(shard):
    """One shard's rows of the sample sheet (empty for an unknown shard)."""
    return _SHARD_TABLES.get(int(shard), _PLAIN_SHEET.iloc[:0])


def shard_samples(shard):
    return list(shard_table(shard)["sample_id"])


def get_shard_raw_runs(wildcards):
    """Raw run files of one ingest shard."""
    return list(shard_table(wildcards.shard)["features_path"])


_SHARD_RECORDS = {}


def sheet_records(shard=None):
    """Sample-sheet rows (as dicts) that ingest needs, for one shard or all (the per-shard
    lists are made once, in one to_dict: params are evaluated several times per job)."""
    if shard is not None and _SHARD_RECORDS:
        return _SHARD_RECORDS.get(int(shard), [])
    cols = [c for c in _PLAIN_SHEET.columns if c not in ("labelled", "shard")]
    records = _PLAIN_SHEET[cols].to_dict(orient="records")
    if shard is None:
        return records
    for sheet_shard, record in zip(_PLAIN_SHEET["shard"], records):
        _SHARD_RECORDS.setdefault(int(sheet_shard), []).append(record)
    return _SHARD_RECORDS.get(int(shard), [])


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


# --- ensemble ---
MEMBERS = list(MODELS) + BASELINES + TABULAR
MODEL_PATTERN = "|".join(map(re.escape, MODELS)) or "(?!)"
BASELINE_PATTERN = "|".join(map(re.escape, BASELINES)) or "(?!)"
UNLABELLED = list(SHEET.loc[~SHEET["labelled"], "sample_id"])


def get_sample_sheet_files():
    """The metadata and label files the sample sheet is read from (edits re-run the user)."""
    root = Path(CFG["data"]["dir"])
    files = [root / CFG["data"]["metadata_file"]]
    files += [root / f for f in CFG["data"]["labels_files"] if (root / f).exists()]
    return [str(f) for f in files]


def get_fold_predictions(filename):
    """Input function: a model's per-fold prediction files, fold 0 first."""

    def inputs(wildcards):
        return [
            res("predictions", wildcards.model, f"fold{fold}", filename)
            for fold in FOLDS
        ]

    return inputs


# what each baseline reads, asked of the registry (checked here, at parse time)
BASELINE_REPRESENTATIONS = {b: baseline_representation(b, CFG) for b in BASELINES}


def get_baseline_inputs(wildcards):
    """Folds and sheet files, plus the stacked renders of every split for a baseline that
    reads a representation."""
    return fitted_member_inputs(BASELINE_REPRESENTATIONS[wildcards.baseline])


def fitted_member_inputs(rep):
    """Folds, sheet files and the stacked renders (every split) of ``rep`` (None = none)."""
    stacks = [res("render", rep, f"stack_{s}.npy") for s in SPLITS] if rep else []
    return {
        "folds": res("folds.csv"),
        "sheet": get_sample_sheet_files(),
        "stacks": stacks,
        "stack_ids": [s.removesuffix(".npy") + ".csv" for s in stacks],
    }


def ensemble_candidates():
    """Members the selection may choose from: models and tabular members, plus baselines
    when asked."""
    extra = BASELINES if CFG["ensemble"]["include_baselines"] else []
    return list(MODELS) + TABULAR + extra


def get_submission_inputs(wildcards):
    """The ensemble's test logits, and the submission template when one is configured."""
    inputs = {
        "test": res("ensemble", "test_logits.parquet"),
        "oof": res("ensemble", "oof_logits.parquet"),
    }
    if CFG["data"]["submission_format"] is not None:
        fmt = Path(CFG["data"]["dir"]) / CFG["data"]["submission_format"]
        inputs["format"] = str(fmt)
    return inputs


# --- render ---
def get_render_shard_runs(wildcards):
    """The ingest shard folder (cached runs or decoded images) that one render shard reads."""
    return res("runs", f"shard{wildcards.shard}")


def get_split_shards(wildcards):
    """The rendered shard folders holding one split's samples, in shard order."""
    return [
        res("render", wildcards.rep, f"shard{shard}")
        for shard in split_shards(wildcards.split)
    ]


def split_shards(split):
    """Shard numbers of one split's samples."""
    return sorted(int(s) for s in SHEET.loc[SHEET["split"] == split, "shard"].unique())


def render_settings(rep):
    """A representation's settings (its own only: editing one re-renders only it), the
    keys its layout uses (images: image_size, channels, interpolation, dtype)."""
    return LAYOUT.representation_settings(CFG["representations"][rep])


def render_view(rep):
    """How a representation's images are drawn in reports: its log mode and axes (m/z
    rows, x extent and labels, a plain dict), as its layout says (rep None: no
    representation is configured)."""
    return LAYOUT.render_view(None if rep is None else CFG["representations"][rep])


def render_shard_samples(shard):
    """sample_id and derivatized flag (0 when the layout has none) of a shard's samples."""
    table = shard_table(shard)
    flags = table["derivatized"] if "derivatized" in table.columns else [0] * len(table)
    return [
        {"sample_id": sample_id, "derivatized": int(flag)}
        for sample_id, flag in zip(table["sample_id"], flags)
    ]


def split_members(split):
    """Rows of one split's stack: [sample_id, shard] in sample-sheet order."""
    rows = SHEET.loc[SHEET["split"] == split]
    return [
        [sample_id, int(shard)]
        for sample_id, shard in zip(rows["sample_id"], rows["shard"])
    ]


# --- folds ---
def folds_seed():
    """The folds' own seed, or the global seed when folds.seed is null."""
    seed = CFG["folds"]["seed"]
    return CFG["seed"] if seed is None else seed


# --- report ---
REPORT_N_EXAMPLES = 6  # example renders per representation
REPORT_CALIBRATION_BINS = 10  # probability bins of the reliability diagram
REPORT_SPLIT = "train" if "train" in SPLITS else (SPLITS[0] if SPLITS else None)


def get_report_outputs():
    """Report figures and tables: QC and renders always, model results when models exist."""
    outputs = [res("report", "qc_summary.html")]
    if REPORT_SPLIT is not None:
        outputs += expand(res("report", "renders_{rep}.png"), rep=REPRESENTATIONS)
    if MODELS:
        outputs += [
            res("report", name)
            for name in (
                "training_curves.png",
                "oof_loss_per_label.png",
                "baseline_comparison.png",
                "calibration.png",
                "member_correlation.png",
                "ensemble_selection.png",
            )
        ]
    outputs += expand(res("members", "{tabular}", "shap_summary.png"), tabular=TABULAR)
    return outputs


def get_report_stack(ext):
    """Input function: one representation's stacked renders of the report split."""

    def inputs(wildcards):
        return res("render", wildcards.rep, f"stack_{REPORT_SPLIT}.{ext}")

    return inputs


def report_curve_keys():
    """[model, fold] of every train job, in the order of get_report_curves()."""
    return [[model, fold] for model in MODELS for fold in FOLDS]


def get_report_curves():
    """The curve.png of every train job (model x fold)."""
    return [
        res("models", model, f"fold{fold}", "curve.png")
        for model, fold in report_curve_keys()
    ]


# --- ingest ---
# data.layout names one registered layout (spectrovision.data.layouts): its class ingests,
# summarises and renders, and each stage's code version is its own modules' closure.
LAYOUT = get_layout(CFG["data"]["layout"])
# Every model is built and run once on its representation's image shape (main process
# only, cached under results/checks/): a backbone that cannot take these images fails now,
# naming the model, not when its train job starts.
if workflow.is_main_process and MODELS:
    check_models_build(
        MODELS,
        {r: LAYOUT.image_shape(CFG["representations"][r]) for r in REPRESENTATIONS},
        len(LABELS),
        cache=res("checks", "models.json"),
    )


def layout_code(script, stage):
    """Code version of a layout stage's job: the script's import closure plus the
    layout's modules for the stage (editing one layout's code re-runs only its jobs)."""
    return f"{script_code(script)}+{layout_code_version(LAYOUT.name, stage)}"


def ingest_columns():
    """The run-file column names of the layout (data.layout, data.columns) as a plain dict."""
    return dataclasses.asdict(run_columns(CFG["data"]))


# --- tabular ---
TABULAR_SETTINGS = {
    name: resolve_tabular(CFG, name, list(SHEET.columns)) for name in TABULAR
}
TABULAR_PATTERN = "|".join(map(re.escape, TABULAR)) or "(?!)"


def tabular_settings(name):
    """A tabular member's resolved settings (representation and seed filled in), as a
    plain dict for params."""
    return as_dict(TABULAR_SETTINGS[name])


def get_tabular_inputs(wildcards):
    """Folds, sheet files and the stacked renders (every split) of the member's representation."""
    return fitted_member_inputs(TABULAR_SETTINGS[wildcards.tabular].representation)


# --- train / predict ---
def model_settings(model):
    """A model's resolved settings (schema defaults < model_defaults < its own keys)."""
    return MODELS[model]


def get_model_stacks(ext, splits=None):
    """Input function: the stacked renders (ext npy) or their id lists (csv) of ``splits``
    (default: every split), for the representation the model reads."""

    def inputs(wildcards):
        rep = MODELS[wildcards.model]["representation"]
        return [
            res("render", rep, f"stack_{split}.{ext}") for split in splits or SPLITS
        ]

    return inputs


def checkpoint_path(wildcards):
    """Per-epoch training state, outside the declared outputs (a killed job resumes)."""
    return res("checkpoints", wildcards.model, f"fold{wildcards.fold}", "last.pt")


# --- analysis (explain, embed, novelty) ---
def get_analysis_outputs():
    """Grad-CAM++ grid, UMAP plot and novelty scores: each when enabled and models exist
    (novelty also needs unlabelled samples)."""
    if not MODELS:
        return []
    outputs = []
    for stage, name in (("explain", "gradcam.png"), ("embed", "umap.png")):
        if CFG[stage]["enabled"]:
            model, fold = analysis_model(CFG, MODELS, stage)
            outputs.append(res(stage, model, f"fold{fold}", name))
    if CFG["novelty"]["enabled"] and UNLABELLED:
        outputs += [
            res("novelty", "novelty_scores.csv"),
            res("novelty", "top_novel.png"),
        ]
    return outputs


def get_novelty_inputs(wildcards):
    """The novelty representation's stacks, the ensemble's test logits and selection, and
    the test logits of every candidate member (the script keeps the selected ones)
    """
    rep = novelty_representation(CFG)
    return {
        "stacks": [res("render", rep, f"stack_{s}.npy") for s in SPLITS],
        "stack_ids": [res("render", rep, f"stack_{s}.csv") for s in SPLITS],
        "ensemble": res("ensemble", "test_logits.parquet"),
        "selection": res("ensemble", "selection.json"),
        "members": [
            res("members", m, "test_logits.parquet") for m in ensemble_candidates()
        ],
    }


LABELLED = list(SHEET.loc[SHEET["labelled"], "sample_id"])


# --- images ---
for _name, _settings in MODELS.items():
    check_model_metadata(_name, _settings, list(SHEET.columns))


def get_predict_sheet(wildcards):
    """The sample-sheet files, for models that read metadata columns (others: none)."""
    return (
        get_sample_sheet_files() if MODELS[wildcards.model]["metadata_columns"] else []
    )


# --- trained manifest (what an apply run reads) and apply mode ---
def trained_member_entries():
    """Every member of this run with its kind, representation and files (the manifest)."""
    fitted = {b: ("baseline", BASELINE_REPRESENTATIONS[b], []) for b in BASELINES} | {
        t: ("tabular", s.representation, list(s.metadata_columns))
        for t, s in TABULAR_SETTINGS.items()
    }
    return member_entries(models=MODELS, n_folds=len(FOLDS), fitted=fitted)


def get_manifest_inputs(wildcards):
    """The ensemble's selection and every member file the manifest hashes."""
    files = [
        res(f) for entry in trained_member_entries().values() for f in entry["files"]
    ]
    return {"selection": res("ensemble", "selection.json"), "members": files}


def image_shapes():
    """Each representation's image shape (channels, m/z, x), as its layout renders it."""
    return {
        r: list(LAYOUT.image_shape(CFG["representations"][r])) for r in REPRESENTATIONS
    }


APPLIED = applied_members(MANIFEST) if MANIFEST is not None else {}
APPLIED_MODELS = [m for m, e in APPLIED.items() if e["kind"] == "model"]
APPLIED_FITTED = [m for m, e in APPLIED.items() if e["kind"] != "model"]
APPLIED_MODEL_PATTERN = "|".join(map(re.escape, APPLIED_MODELS)) or "(?!)"
APPLIED_FITTED_PATTERN = "|".join(map(re.escape, APPLIED_FITTED)) or "(?!)"
APPLIED_FOLDS = (
    list(range(MANIFEST["recipe"]["folds"]["n_folds"])) if MANIFEST is not None else []
)


def trained_file(*parts):
    """A path inside the trained run's results folder."""
    return os.path.join(TRAINED, *parts)


def get_applied_stacks(ext):
    """Input function: the new data set's stacks (every split) of the member's
    representation (none for a member that reads no render)."""

    def inputs(wildcards):
        rep = APPLIED[wildcards.member]["representation"]
        if rep is None:
            return []
        return [res("render", rep, f"stack_{split}.{ext}") for split in SPLITS]

    return inputs


def applied_reads_sheet(member):
    """Whether an applied member reads the sample sheet: fitted members always (their
    rows are the sheet's), models when they read metadata columns."""
    entry = APPLIED[member]
    return bool(entry["metadata_columns"]) or entry["kind"] != "model"


def get_applied_sheet(wildcards):
    """The sample-sheet files, for members that read the sheet (others: none)."""
    return get_sample_sheet_files() if applied_reads_sheet(wildcards.member) else []


def applied_data(member):
    """The data block for a member that reads the sheet (None for an image-only model)."""
    return SHEET_DATA if applied_reads_sheet(member) else None
