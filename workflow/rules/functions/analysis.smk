# Input functions and helpers of the analysis stage's rules (workflow/rules/analysis.smk).
from spectrovision.config.checks import analysis_model, novelty_representation


def get_analysis_outputs():
    """Grad-CAM++ grid, UMAP plot and novelty scores: each when enabled and models exist
    (novelty also needs unlabelled samples)."""
    if not MODELS:
        return []
    outputs = []
    for stage, name in (("explain", "gradcam.png"), ("embed", "umap.png")):
        if CFG[stage]["enabled"]:
            model, fold = analysis_model(CFG, MODELS, stage)
            outputs.append(res(stage, model, f"fold{fold}", name))
    if CFG["novelty"]["enabled"] and UNLABELLED:
        outputs += [
            res("novelty", "novelty_scores.csv"),
            res("novelty", "top_novel.png"),
        ]
    return outputs


def get_novelty_inputs(wildcards):
    """The novelty representation's stacks, the ensemble's test logits and selection, and
    the test logits of every candidate member (the script keeps the selected ones)
    """
    rep = novelty_representation(CFG)
    return {
        "stacks": [res("render", rep, f"stack_{s}.npy") for s in SPLITS],
        "stack_ids": [res("render", rep, f"stack_{s}.csv") for s in SPLITS],
        "ensemble": res("ensemble", "test_logits.parquet"),
        "selection": res("ensemble", "selection.json"),
        "members": [
            res("members", m, "test_logits.parquet") for m in ensemble_candidates()
        ],
    }
