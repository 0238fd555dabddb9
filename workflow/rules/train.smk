# Stage: train (shared input functions: common.smk).
# train: the labelled splits' stacks + folds + the labelled sheet -> models/{model}/fold{fold}/ (the kept
# weights, keep_weights: the last epoch's by default, best_val the lowest validation loss's; metrics, history,
# curve). One GPU per job; per-epoch checkpoint under checkpoints/.


rule train:
    input:
        stacks=get_model_stacks("npy", LABELLED_SPLITS),
        stack_ids=get_model_stacks("csv", LABELLED_SPLITS),
        folds=res("folds.csv"),
        labelled=res("sheet", "labelled.parquet"),
    output:
        weights=res("models", "{model}", "fold{fold}", "model.pt"),
        metrics=res("models", "{model}", "fold{fold}", "metrics.json"),
        history=res("models", "{model}", "fold{fold}", "history.csv"),
        curve=report(
            res("models", "{model}", "fold{fold}", "curve.png"),
            category="3. Training",
            subcategory="{model}",
            caption="../report/training_curves.rst",
        ),
    log:
        res("logs", "train", "{model}", "fold{fold}.log"),
    benchmark:
        res("benchmarks", "train", "{model}", "fold{fold}.tsv")
    wildcard_constraints:
        model=MODEL_PATTERN,
    # the longest train jobs start first (learn.cost): no long fold left to run alone at the end
    priority: get_train_priority
    conda:
        "../../envs/torch.yaml"
    threads: CFG["workflow"]["train_threads"]
    resources:
        gpu=1,
        mem_mb=CFG["workflow"]["train_mem_mb"],
        runtime=CFG["workflow"]["train_runtime"],
    params:
        settings=lambda wildcards: model_settings(wildcards.model),
        fold=lambda wildcards: int(wildcards.fold),
        labels=LABELS,
        task=CFG["task"],
        # per-epoch training state, outside the declared outputs (a killed job resumes)
        checkpoint=lambda wildcards: res(
            "checkpoints", wildcards.model, f"fold{wildcards.fold}", "last.pt"
        ),
        code=script_code("train"),
    script:
        "../scripts/train.py"
