"""Synthetic data sets, for the demo, the tests and the benchmarks (not used by the workflow):
GC-MS runs in the Mars-2 layout or as instrument files, and particle images."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "demo": ['generate_demo_dataset', 'load_spectra_library', 'split_sizes_for'],
    "particles": ['generate_particle_dataset'],
    "instrument_files": ['WRITERS', 'andi_bytes', 'mzml_bytes', 'jcamp_bytes'],
})
