# Stage: folds (see workflow/rules/common.smk for shared input functions).
# folds: metadata + label files -> folds.csv (multilabel iterative stratification, seeded).


rule folds:
    input:
        unpack(get_folds_inputs),
    output:
        folds=res("folds.csv"),
    log:
        "logs/folds.log",
    conda:
        "../../envs/core.yaml"
    params:
        n_folds=CFG["folds"]["n_folds"],
        seed=folds_seed(),
        val_in_folds=CFG["folds"]["val_in_folds"],
        code=script_code("make_folds"),
    script:
        "../scripts/make_folds.py"
