# Stage: tabular members (input functions: functions/tabular.smk; shared ones: common.smk).
# tabular: stacked renders + metadata + folds -> members/{tabular} (per-label LightGBM per
# fold, scored and selected by the ensemble like any model) with SHAP feature importance.


include: "functions/tabular.smk"


rule tabular:
    input:
        unpack(get_tabular_inputs),
    output:
        oof=res("members", "{tabular}", "oof_logits.parquet"),
        test=res("members", "{tabular}", "test_logits.parquet"),
        fitted=res("members", "{tabular}", "fitted.pkl"),
        importance=res("members", "{tabular}", "shap_importance.csv"),
        summary=report(
            res("members", "{tabular}", "shap_summary.png"),
            category="6. Tabular members",
            subcategory="{tabular}",
            caption="../report/tabular_shap.rst",
        ),
    log:
        res("logs", "tabular", "{tabular}.log"),
    benchmark:
        res("benchmarks", "tabular", "{tabular}.tsv")
    wildcard_constraints:
        tabular=TABULAR_PATTERN,
    # on the way to the ensemble: before the analyses (learn.cost)
    priority: SCORE_PATH_PRIORITY
    conda:
        "../../envs/core.yaml"
    threads: CFG["workflow"]["train_threads"]
    params:
        data=SHEET_DATA,
        labels=LABELS,
        settings=lambda wildcards: tabular_settings(wildcards.tabular),
        num_threads=CFG["workflow"]["train_threads"],
        clip=CFG["ensemble"]["clip"],
        fold_combine=CFG["ensemble"]["fold_combine"],
        task=CFG["task"],
        code=script_code("run_tabular"),
    script:
        "../scripts/run_tabular.py"
