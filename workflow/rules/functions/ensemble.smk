# Input functions and helpers of the ensemble stage's rules (workflow/rules/ensemble.smk).
from spectrovision.apply.manifest import member_entries, recipe_of

BASELINE_PATTERN = "|".join(map(re.escape, BASELINES)) or "(?!)"


def get_fold_predictions(filename):
    """Input function: a model's per-fold prediction files, fold 0 first."""

    def inputs(wildcards):
        return [
            res("predictions", wildcards.model, f"fold{fold}", filename)
            for fold in FOLDS
        ]

    return inputs


def get_baseline_inputs(wildcards):
    """Folds and sheet files, plus the stacked renders of every split for a baseline that
    reads a representation."""
    return fitted_member_inputs(BASELINE_REPRESENTATIONS[wildcards.baseline])


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


# --- trained manifest (what an apply run reads) ---
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
    return {r: list(shape) for r, shape in CHECKED.image_shapes.items()}
