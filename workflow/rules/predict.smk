# Stage: predict (shared input functions: common.smk).
# predict: trained model x fold -> predictions/{model}/fold{fold}/ (TTA-averaged logits of
# the fold's out-of-fold samples and of every unlabelled sample). Never re-trains.


rule predict:
    input:
        weights=res("models", "{model}", "fold{fold}", "model.pt"),
        stacks=get_model_stacks("npy"),
        stack_ids=get_model_stacks("csv"),
        folds=res("folds.csv"),
        # the sample-sheet files, for models that read metadata columns (others: none)
        sheet=lambda wildcards: (
            get_sample_sheet_files()
            if MODELS[wildcards.model]["metadata_columns"]
            else []
        ),
    output:
        oof=res("predictions", "{model}", "fold{fold}", "oof_logits.parquet"),
        test=res("predictions", "{model}", "fold{fold}", "test_logits.parquet"),
        info=res("predictions", "{model}", "fold{fold}", "tta.json"),
    log:
        res("logs", "predict", "{model}", "fold{fold}.log"),
    benchmark:
        res("benchmarks", "predict", "{model}", "fold{fold}.tsv")
    wildcard_constraints:
        model=MODEL_PATTERN,
    # a long member's last fold is the end of the run: its predictions first (learn.cost)
    priority: get_train_priority
    conda:
        "../../envs/torch.yaml"
    threads: CFG["workflow"]["train_threads"]
    resources:
        gpu=1,
    params:
        fold=lambda wildcards: int(wildcards.fold),
        unlabelled=UNLABELLED,
        tta_n_widths=CFG["predict"]["tta_n_widths"],
        tta_step=CFG["predict"]["tta_step"],
        tta_augment_n=CFG["predict"]["tta_augment_n"],
        tta_augment_seed=CFG["predict"]["tta_augment_seed"],
        batch_size=CFG["predict"]["batch_size"],
        data=lambda wildcards: (
            SHEET_DATA if model_settings(wildcards.model)["metadata_columns"] else None
        ),
        code=script_code("predict"),
    script:
        "../scripts/predict.py"
