"""Render: runs as (channels, mass, time or temperature) images and decoded images resized, cached per shard and stacked per split."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "runs": ['RenderSpec', 'render_sample', 'render_shard', 'stack_split', 'stack_splits'],
    "images": ['ImageSpec', 'render_image', 'render_image_shard'],
})
