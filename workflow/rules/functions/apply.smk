# Input functions and helpers of the apply stage's rules (workflow/rules/apply.smk).
from spectrovision.apply.manifest import applied_members

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
