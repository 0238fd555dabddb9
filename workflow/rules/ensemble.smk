# Stage: ensemble (input functions: functions/ensemble.smk; shared ones: common.smk).
# gather_model: per-fold predictions -> members/{model}; baseline: members/{baseline};
# ensemble: selection, scores and combined logits; submission: the exact template.


include: "functions/ensemble.smk"


rule gather_model:
    input:
        oof=get_fold_predictions("oof_logits.parquet"),
        test=get_fold_predictions("test_logits.parquet"),
        folds=res("folds.csv"),
    output:
        oof=res("members", "{model}", "oof_logits.parquet"),
        test=res("members", "{model}", "test_logits.parquet"),
    log:
        res("logs", "gather", "{model}.log"),
    wildcard_constraints:
        model=MODEL_PATTERN,
    # on the way to the ensemble: before the analyses (learn.cost)
    priority: SCORE_PATH_PRIORITY
    conda:
        "../../envs/core.yaml"
    params:
        labels=LABELS,
        clip=CFG["ensemble"]["clip"],
        fold_combine=CFG["ensemble"]["fold_combine"],
        task=CFG["task"],
        code=script_code("gather_model"),
    script:
        "../scripts/gather_model.py"


rule baseline:
    input:
        unpack(get_baseline_inputs),
    output:
        oof=res("members", "{baseline}", "oof_logits.parquet"),
        test=res("members", "{baseline}", "test_logits.parquet"),
        fitted=res("members", "{baseline}", "fitted.pkl"),
    log:
        res("logs", "baseline", "{baseline}.log"),
    benchmark:
        res("benchmarks", "baseline", "{baseline}.tsv")
    wildcard_constraints:
        baseline=BASELINE_PATTERN,
    priority: SCORE_PATH_PRIORITY
    conda:
        "../../envs/core.yaml"
    params:
        data=SHEET_DATA,
        labels=LABELS,
        settings=lambda wildcards: CFG["baseline_settings"].get(wildcards.baseline, {}),
        representation=lambda wildcards: BASELINE_REPRESENTATIONS[wildcards.baseline],
        seed=CFG["seed"],
        clip=CFG["ensemble"]["clip"],
        fold_combine=CFG["ensemble"]["fold_combine"],
        task=CFG["task"],
        code=script_code("run_baseline"),
    script:
        "../scripts/run_baseline.py"


rule ensemble:
    input:
        oof=expand(res("members", "{member}", "oof_logits.parquet"), member=MEMBERS),
        test=expand(res("members", "{member}", "test_logits.parquet"), member=MEMBERS),
        sheet=get_sample_sheet_files(),
    output:
        scores=res("ensemble", "scores.csv"),
        selection=res("ensemble", "selection.json"),
        oof=res("ensemble", "oof_logits.parquet"),
        test=res("ensemble", "test_logits.parquet"),
    log:
        res("logs", "ensemble", "ensemble.log"),
    benchmark:
        res("benchmarks", "ensemble", "ensemble.tsv")
    priority: SCORE_PATH_PRIORITY
    conda:
        "../../envs/core.yaml"
    params:
        data=SHEET_DATA,
        labels=LABELS,
        members=MEMBERS,
        candidates=ensemble_candidates(),
        settings=CFG["ensemble"],
        task=CFG["task"],
        code=script_code("ensemble"),
    script:
        "../scripts/ensemble.py"


rule submission:
    input:
        unpack(get_submission_inputs),
    output:
        submission=res("submission.csv"),
        provenance=res("submission.csv.provenance.json"),
    log:
        res("logs", "submission", "submission.log"),
    conda:
        "../../envs/core.yaml"
    params:
        labels=LABELS,
        has_format=CFG["data"]["submission_format"] is not None,
        unlabelled=UNLABELLED,
        clip=CFG["ensemble"]["clip"],
        task=CFG["task"],
        code=script_code("make_submission"),
    script:
        "../scripts/make_submission.py"


rule trained_manifest:
    input:
        unpack(get_manifest_inputs),
    output:
        manifest=res("trained_manifest.json"),
    log:
        res("logs", "trained_manifest.log"),
    conda:
        "../../envs/core.yaml"
    params:
        recipe=recipe_of(CFG),
        layout=CFG["data"]["layout"],
        labels=LABELS,
        image_shapes=image_shapes(),
        members=trained_member_entries(),
        code=script_code("trained_manifest"),
    script:
        "../scripts/trained_manifest.py"
