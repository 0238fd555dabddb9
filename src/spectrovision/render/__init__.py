"""Render: runs as (channels, mass, time or temperature) images, cached per shard and stacked per split."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "runs": ['RenderSpec', 'run_arrays', 'x_bins', 'subtract_mass_minimum', 'aggregate', 'intensity_image', 'divide_by_max', 'normalize', 'log_scale', 'extra_channels', 'render_sample', 'read_run', 'render_shard', 'stack_split', 'stack_splits'],
})
