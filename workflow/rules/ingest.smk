# Stage: ingest (see workflow/rules/common.smk for shared input functions).
# ingest_shard: raw run files of one shard -> validated, typed Parquet runs + the shard's QC table
# (layout images: decoded images as NPY, their own script);
# qc_summary: every shard's QC table -> one QC table and a readable Markdown summary.


rule ingest_shard:
    input:
        raw=get_shard_raw_runs,
    output:
        runs=directory(res("runs", "shard{shard}")),
        qc=res("qc", "shard{shard}.parquet"),
    log:
        "logs/ingest/shard{shard}.log",
    benchmark:
        "benchmarks/ingest/shard{shard}.tsv"
    conda:
        "../../envs/core.yaml"
    params:
        samples=lambda wildcards: sheet_records(wildcards.shard),
        columns=ingest_columns(),
        qc=CFG["qc"],
        code=script_code("ingest_images" if IMAGES else "ingest_shard"),
    script:
        "../scripts/ingest_images.py" if IMAGES else "../scripts/ingest_shard.py"


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
        "logs/ingest/qc_summary.log",
    conda:
        "../../envs/core.yaml"
    params:
        findings=SHEET.attrs["findings"],
        code=script_code("qc_images_summary" if IMAGES else "qc_summary"),
    script:
        "../scripts/qc_images_summary.py" if IMAGES else "../scripts/qc_summary.py"
