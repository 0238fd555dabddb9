# Stage: analysis (input functions: functions/analysis.smk; shared ones: common.smk).
# explain: Grad-CAM++ of one model x fold over its held-out renders -> explain/{model}/fold{fold}/
# embed: UMAP of one model x fold's penultimate features (every split) -> embed/{model}/fold{fold}/
# novelty: autoencoder reconstruction error + ensemble entropy/disagreement of unlabelled
# samples -> novelty/


include: "functions/analysis.smk"


rule explain:
    input:
        weights=res("models", "{model}", "fold{fold}", "model.pt"),
        stacks=get_model_stacks("npy"),
        stack_ids=get_model_stacks("csv"),
        folds=res("folds.csv"),
        sheet=get_sample_sheet_files(),
    output:
        figure=report(
            res("explain", "{model}", "fold{fold}", "gradcam.png"),
            category="7. Explanations",
            subcategory="{model}",
            caption="../report/gradcam.rst",
        ),
        table=res("explain", "{model}", "fold{fold}", "gradcam.csv"),
    log:
        res("logs", "explain", "{model}", "fold{fold}.log"),
    benchmark:
        res("benchmarks", "explain", "{model}", "fold{fold}.tsv")
    wildcard_constraints:
        model=MODEL_PATTERN,
    conda:
        "../../envs/torch.yaml"
    threads: CFG["workflow"]["train_threads"]
    params:
        data=SHEET_DATA,
        samples_per_label=CFG["explain"]["samples_per_label"],
        labels=CFG["explain"]["labels"],
        log_mode=lambda wildcards: render_view(
            model_settings(wildcards.model)["representation"]
        )["log"],
        axes=lambda wildcards: render_view(
            model_settings(wildcards.model)["representation"]
        )["axes"],
        code=script_code("explain"),
    script:
        "../scripts/explain.py"


rule embed:
    input:
        weights=res("models", "{model}", "fold{fold}", "model.pt"),
        stacks=get_model_stacks("npy"),
        stack_ids=get_model_stacks("csv"),
        sheet=get_sample_sheet_files(),
    output:
        table=res("embed", "{model}", "fold{fold}", "umap.parquet"),
        plot=report(
            res("embed", "{model}", "fold{fold}", "umap.png"),
            category="8. Embedding",
            subcategory="{model}",
            caption="../report/umap.rst",
        ),
    log:
        res("logs", "embed", "{model}", "fold{fold}.log"),
    benchmark:
        res("benchmarks", "embed", "{model}", "fold{fold}.tsv")
    wildcard_constraints:
        model=MODEL_PATTERN,
    conda:
        "../../envs/torch.yaml"
    threads: CFG["workflow"]["train_threads"]
    params:
        data=SHEET_DATA,
        splits=SPLITS,
        color_label=CFG["embed"]["color_label"],
        n_neighbors=CFG["embed"]["n_neighbors"],
        min_dist=CFG["embed"]["min_dist"],
        seed=CFG["seed"],
        code=script_code("embed"),
    script:
        "../scripts/embed.py"


rule novelty:
    input:
        unpack(get_novelty_inputs),
    output:
        scores=res("novelty", "novelty_scores.csv"),
        gallery=report(
            res("novelty", "top_novel.png"),
            category="9. Novelty",
            caption="../report/novelty.rst",
        ),
    log:
        res("logs", "novelty", "novelty.log"),
    benchmark:
        res("benchmarks", "novelty", "novelty.tsv")
    conda:
        "../../envs/torch.yaml"
    threads: CFG["workflow"]["train_threads"]
    params:
        representation=novelty_representation(CFG),
        train_ids=LABELLED,
        unlabelled=UNLABELLED,
        members=ensemble_candidates(),
        labels=LABELS,
        epochs=CFG["novelty"]["epochs"],
        top_k=CFG["novelty"]["top_k"],
        seed=CFG["seed"],
        task=CFG["task"],
        log_mode=render_view(novelty_representation(CFG))["log"],
        axes=render_view(novelty_representation(CFG))["axes"],
        code=script_code("novelty"),
    script:
        "../scripts/novelty.py"
