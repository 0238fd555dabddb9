# Stage: ingest (input functions: functions/ingest.smk; shared ones: common.smk).
# ingest_shard: raw files of one shard -> cached samples + the shard's QC table, as the layout
# says (run tables: validated, typed Parquet runs; images: decoded pixels as NPY);
# qc_summary: every shard's QC table -> one QC table and a readable Markdown summary.


include: "functions/ingest.smk"


rule ingest_shard:
    input:
        raw=get_shard_raw_runs,
    output:
        runs=directory(res("runs", "shard{shard}")),
        qc=res("qc", "shard{shard}.parquet"),
    log:
        res("logs", "ingest", "shard{shard}.log"),
    benchmark:
        res("benchmarks", "ingest", "shard{shard}.tsv")
    # before any train job (learn.cost)
    priority: PREP_PRIORITY
    conda:
        "../../envs/core.yaml"
    params:
        samples=lambda wildcards: sheet_records(wildcards.shard),
        columns=ingest_columns(),
        qc=CFG["qc"],
        layout=CFG["data"]["layout"],
        code=layout_code("ingest_shard", "ingest"),
    script:
        "../scripts/ingest_shard.py"


rule qc_summary:
    input:
        shards=expand(res("qc", "shard{shard}.parquet"), shard=SHARDS),
    output:
        qc=res("qc", "qc.parquet"),
        summary=report(
            res("qc", "qc_summary.md"),
            category="1. Data quality",
            labels={"table": "QC summary (Markdown)"},
        ),
    log:
        res("logs", "ingest", "qc_summary.log"),
    conda:
        "../../envs/core.yaml"
    params:
        findings=SHEET.attrs["findings"],
        layout=CFG["data"]["layout"],
        code=layout_code("qc_summary", "qc"),
    script:
        "../scripts/qc_summary.py"
