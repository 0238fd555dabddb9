# Stage: folds (shared input functions: common.smk).
# labelled_sheet: the labelled samples (ids, split, metadata, labels), from params, so that
# edits of metadata.csv that add or change only unlabelled rows re-run nothing downstream;
# folds: the labelled sheet -> folds.csv (multilabel iterative stratification, seeded).
from spectrovision.data.sheet import labelled_table

# the labelled samples (ids, split, metadata, labels) as plain values: the labelled_sheet
# rule writes them, so adding unlabelled runs to metadata.csv re-runs nothing that trains
LABELLED_TABLE = labelled_table(SHEET)
# the folds' own seed, or the global seed when folds.seed is null
FOLDS_SEED = CFG["seed"] if CFG["folds"]["seed"] is None else CFG["folds"]["seed"]


rule labelled_sheet:
    output:
        sheet=res("sheet", "labelled.parquet"),
    log:
        res("logs", "sheet", "labelled.log"),
    priority: PREP_PRIORITY
    conda:
        "../../envs/core.yaml"
    params:
        table=LABELLED_TABLE,
        code=script_code("labelled_sheet"),
    script:
        "../scripts/labelled_sheet.py"


rule folds:
    input:
        labelled=res("sheet", "labelled.parquet"),
    output:
        folds=res("folds.csv"),
    log:
        res("logs", "folds.log"),
    priority: PREP_PRIORITY
    conda:
        "../../envs/core.yaml"
    params:
        labels=LABELS,
        n_folds=CFG["folds"]["n_folds"],
        seed=FOLDS_SEED,
        val_in_folds=CFG["folds"]["val_in_folds"],
        code=script_code("make_folds"),
    script:
        "../scripts/make_folds.py"
