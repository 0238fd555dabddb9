# Stage: render (input functions: functions/render.smk; shared ones: common.smk).
# render_shard: cached samples of one ingest shard -> one NPY image per sample, per
# representation, as the layout says (run tables: rendered runs; images: resized images);
# stack_render: the shards of one split -> that split's memory-mappable stack + id CSV (so new
# unlabelled runs re-stack only their split).


include: "functions/render.smk"


rule render_shard:
    input:
        runs=get_render_shard_runs,
    output:
        images=directory(res("render", "{rep}", "shard{shard}")),
    log:
        res("logs", "render", "{rep}", "shard{shard}.log"),
    benchmark:
        res("benchmarks", "render", "{rep}", "shard{shard}.tsv")
    # before the train jobs that wait for them (learn.cost)
    priority: get_render_priority
    conda:
        "../../envs/core.yaml"
    params:
        settings=lambda wildcards: render_settings(wildcards.rep),
        samples=lambda wildcards: render_shard_samples(wildcards.shard),
        layout=CFG["data"]["layout"],
        code=layout_code("render_shard", "render"),
    script:
        "../scripts/render_shard.py"


rule stack_render:
    input:
        shards=get_split_shards,
    output:
        stack=res("render", "{rep}", "stack_{split}.npy"),
        ids=res("render", "{rep}", "stack_{split}.csv"),
    log:
        res("logs", "render", "{rep}", "stack_{split}.log"),
    benchmark:
        res("benchmarks", "render", "{rep}", "stack_{split}.tsv")
    priority: get_render_priority
    conda:
        "../../envs/core.yaml"
    params:
        shards=lambda wildcards: split_shards(wildcards.split),
        members=lambda wildcards: split_members(wildcards.split),
        code=script_code("stack_render"),
    script:
        "../scripts/stack_render.py"
