# Stage: apply (trained_results set; input functions: functions/apply.smk).
# The members the trained run's ensemble selected predict every sample of this data set;
# nothing is trained. apply_model: one trained fold -> applied/{model}/fold{fold}/;
# apply_gather: the folds -> applied/{model}/; apply_member: a baseline's or tabular
# member's fitted folds -> applied/{member}/; apply_ensemble: predictions.csv.


include: "functions/apply.smk"


rule apply_model:
    input:
        weights=trained_file("models", "{member}", "fold{fold}", "model.pt"),
        stacks=get_applied_stacks("npy"),
        stack_ids=get_applied_stacks("csv"),
        sheet=get_applied_sheet,
    output:
        logits=res("applied", "{member}", "fold{fold}", "logits.parquet"),
        info=res("applied", "{member}", "fold{fold}", "tta.json"),
    log:
        res("logs", "apply", "{member}", "fold{fold}.log"),
    benchmark:
        res("benchmarks", "apply", "{member}", "fold{fold}.tsv")
    wildcard_constraints:
        member=APPLIED_MODEL_PATTERN,
    conda:
        "../../envs/torch.yaml"
    threads: CFG["workflow"]["train_threads"]
    resources:
        gpu=1,
    params:
        settings=CFG["predict"],
        samples=SAMPLES,
        labels=LABELS,
        data=lambda wildcards: applied_data(wildcards.member),
        code=script_code("apply_model"),
    script:
        "../scripts/apply_model.py"


rule apply_gather:
    input:
        logits=lambda wildcards: [
            res("applied", wildcards.member, f"fold{fold}", "logits.parquet")
            for fold in APPLIED_FOLDS
        ],
    output:
        logits=res("applied", "{member}", "logits.parquet"),
    log:
        res("logs", "apply", "{member}", "gather.log"),
    wildcard_constraints:
        member=APPLIED_MODEL_PATTERN,
    conda:
        "../../envs/core.yaml"
    params:
        labels=LABELS,
        clip=CFG["ensemble"]["clip"],
        fold_combine=CFG["ensemble"].get("fold_combine", "prob_mean"),  # older manifests lack it
        task=CFG["task"],
        code=script_code("apply_gather"),
    script:
        "../scripts/apply_gather.py"


rule apply_member:
    input:
        fitted=trained_file("members", "{member}", "fitted.pkl"),
        stacks=get_applied_stacks("npy"),
        stack_ids=get_applied_stacks("csv"),
        sheet=get_applied_sheet,
    output:
        logits=res("applied", "{member}", "logits.parquet"),
    log:
        res("logs", "apply", "{member}.log"),
    wildcard_constraints:
        member=APPLIED_FITTED_PATTERN,
    conda:
        "../../envs/core.yaml"
    threads: CFG["workflow"]["train_threads"]
    params:
        data=SHEET_DATA,
        labels=LABELS,
        num_threads=CFG["workflow"]["train_threads"],
        code=script_code("apply_member"),
    script:
        "../scripts/apply_member.py"


rule apply_ensemble:
    input:
        members=expand(
            res("applied", "{member}", "logits.parquet"), member=list(APPLIED)
        ),
        manifest=trained_file("trained_manifest.json"),
        sheet=get_sample_sheet_files(),
    output:
        predictions=res("predictions.csv"),
        logits=res("applied", "ensemble_logits.parquet"),
        scores=res("applied", "scores.csv"),
    log:
        res("logs", "apply", "ensemble.log"),
    conda:
        "../../envs/core.yaml"
    params:
        members=list(APPLIED),
        selection=MANIFEST["selection"] if MANIFEST else None,
        trained_results=TRAINED,
        data=SHEET_DATA,
        labels=LABELS,
        code=script_code("apply_ensemble"),
    script:
        "../scripts/apply_ensemble.py"
