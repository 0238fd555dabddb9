# Input functions and helpers of the report stage's rules (workflow/rules/report.smk).
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
