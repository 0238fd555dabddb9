# Stage: render (see workflow/rules/common.smk for shared input functions).
# render_shard: cached samples of one ingest shard -> one NPY image per sample, per
# representation, as the layout says (run tables: rendered runs; images: resized images);
# stack_render: all shards of a representation -> one memory-mappable stack + id CSV per split.


rule render_shard:
    input:
        runs=get_render_shard_runs,
    output:
        images=directory(res("render", "{rep}", "shard{shard}")),
    log:
        "logs/render/{rep}/shard{shard}.log",
    benchmark:
        "benchmarks/render/{rep}/shard{shard}.tsv"
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
        shards=get_rendered_shards,
    output:
        stacks=expand(res("render", "{{rep}}", "stack_{split}.npy"), split=SPLITS),
        ids=expand(res("render", "{{rep}}", "stack_{split}.csv"), split=SPLITS),
    log:
        "logs/render/{rep}/stack.log",
    benchmark:
        "benchmarks/render/{rep}/stack.tsv"
    conda:
        "../../envs/core.yaml"
    params:
        splits=SPLITS,
        shards=SHARDS,
        members=stack_members(),
        code=script_code("stack_render"),
    script:
        "../scripts/stack_render.py"
