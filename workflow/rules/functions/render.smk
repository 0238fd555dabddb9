# Input functions and helpers of the render stage's rules (workflow/rules/render.smk).
def get_render_shard_runs(wildcards):
    """The ingest shard folder (cached runs or decoded images) that one render shard reads."""
    return res("runs", f"shard{wildcards.shard}")


def render_settings(rep):
    """A representation's settings (its own only: editing one re-renders only it), the
    keys its layout uses (images: image_size, channels, interpolation, dtype)."""
    return LAYOUT.representation_settings(CFG["representations"][rep])


def render_shard_samples(shard):
    """sample_id and extra-channel flag of a shard's samples (the layout's render_samples)."""
    return LAYOUT.render_samples(shard_table(shard))


def split_shards(split):
    """Shard numbers of one split's samples."""
    return sorted(int(s) for s in SHEET.loc[SHEET["split"] == split, "shard"].unique())


def get_split_shards(wildcards):
    """The rendered shard folders holding one split's samples, in shard order."""
    return [
        res("render", wildcards.rep, f"shard{shard}")
        for shard in split_shards(wildcards.split)
    ]


def split_members(split):
    """Rows of one split's stack: [sample_id, shard] in sample-sheet order."""
    rows = SHEET.loc[SHEET["split"] == split]
    return [
        [sample_id, int(shard)]
        for sample_id, shard in zip(rows["sample_id"], rows["shard"])
    ]
