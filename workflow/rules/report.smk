# Stage: report (input functions: functions/report.smk; shared ones: common.smk).
# Figures and tables under results/report/, each registered for `snakemake --report`
# with a category and a caption from workflow/report/*.rst.


include: "functions/report.smk"


report: "../report/workflow.rst"


rule report_qc:
    input:
        summary=res("qc", "qc_summary.md"),
    output:
        page=report(
            res("report", "qc_summary.html"),
            category="1. Data quality",
            caption="../report/qc_summary.rst",
        ),
    log:
        res("logs", "report", "qc.log"),
    conda:
        "../../envs/core.yaml"
    params:
        code=script_code("report_qc"),
    script:
        "../scripts/report_qc.py"


rule report_renders:
    input:
        stack=get_report_stack("npy"),
        ids=get_report_stack("csv"),
    output:
        grid=report(
            res("report", "renders_{rep}.png"),
            category="2. Renders",
            subcategory="{rep}",
            caption="../report/renders.rst",
        ),
    log:
        res("logs", "report", "renders_{rep}.log"),
    conda:
        "../../envs/core.yaml"
    params:
        n_examples=REPORT_N_EXAMPLES,
        log_mode=lambda wildcards: render_view(wildcards.rep)["log"],
        axes=lambda wildcards: render_view(wildcards.rep)["axes"],
        code=script_code("report_renders"),
    script:
        "../scripts/report_renders.py"


rule report_training_curves:
    input:
        curves=get_report_curves(),
    output:
        grid=report(
            res("report", "training_curves.png"),
            category="3. Training",
            caption="../report/training_curves.rst",
        ),
    log:
        res("logs", "report", "training_curves.log"),
    conda:
        "../../envs/core.yaml"
    params:
        jobs=report_curve_keys(),
        code=script_code("report_training_curves"),
    script:
        "../scripts/report_training_curves.py"


rule report_scores:
    input:
        scores=res("ensemble", "scores.csv"),
    output:
        table=res("report", "oof_loss_per_label.csv"),
        page=report(
            res("report", "oof_loss_per_label.html"),
            category="4. Out-of-fold scores",
            caption="../report/oof_loss_table.rst",
        ),
        bars=report(
            res("report", "oof_loss_per_label.png"),
            category="4. Out-of-fold scores",
            caption="../report/oof_loss_bars.rst",
        ),
        baselines=report(
            res("report", "baseline_comparison.png"),
            category="4. Out-of-fold scores",
            caption="../report/baseline_comparison.rst",
        ),
    log:
        res("logs", "report", "scores.log"),
    conda:
        "../../envs/core.yaml"
    params:
        baselines=BASELINES,
        code=script_code("report_scores"),
    script:
        "../scripts/report_scores.py"


rule report_calibration:
    input:
        oof=res("ensemble", "oof_logits.parquet"),
        sheet=get_sample_sheet_files(),
    output:
        plot=report(
            res("report", "calibration.png"),
            category="5. Ensemble",
            caption="../report/calibration.rst",
        ),
        table=res("report", "calibration.csv"),
    log:
        res("logs", "report", "calibration.log"),
    conda:
        "../../envs/core.yaml"
    params:
        data=SHEET_DATA,
        labels=LABELS,
        n_bins=REPORT_CALIBRATION_BINS,
        task=CFG["task"],
        code=script_code("report_calibration"),
    script:
        "../scripts/report_calibration.py"


rule report_correlation:
    input:
        oof=expand(res("members", "{member}", "oof_logits.parquet"), member=MEMBERS),
    output:
        plot=report(
            res("report", "member_correlation.png"),
            category="5. Ensemble",
            caption="../report/member_correlation.rst",
        ),
        table=res("report", "member_correlation.csv"),
    log:
        res("logs", "report", "correlation.log"),
    conda:
        "../../envs/core.yaml"
    params:
        members=MEMBERS,
        labels=LABELS,
        code=script_code("report_correlation"),
    script:
        "../scripts/report_correlation.py"


rule report_selection:
    input:
        selection=res("ensemble", "selection.json"),
    output:
        plot=report(
            res("report", "ensemble_selection.png"),
            category="5. Ensemble",
            caption="../report/ensemble_selection.rst",
        ),
    log:
        res("logs", "report", "selection.log"),
    conda:
        "../../envs/core.yaml"
    params:
        code=script_code("report_selection"),
    script:
        "../scripts/report_selection.py"
