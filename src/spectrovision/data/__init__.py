"""Data: the sample sheet, the layout registry (ingest and QC of run tables, instrument files and images), folds, metadata columns."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "sheet": ['RunColumns', 'run_columns', 'shard_of', 'load_sample_sheet', 'sample_sheet'],
    "layouts": ['Layout', 'RunLayout', 'InstrumentLayout', 'ImageLayout', 'Mars2Layout', 'Mars1Layout', 'GenericLayout', 'LAYOUTS', 'get_layout', 'group_columns', 'layout_code_version', 'representation_settings'],
    "ingest": ['QC_SCHEMA', 'ingest_run', 'ingest_shard', 'summarize_qc', 'write_qc_summary'],
    "instrument": ['INSTRUMENT_QC_SCHEMA', 'read_scans', 'ingest_instrument_run', 'ingest_instrument_shard', 'summarize_instrument_qc'],
    "images": ['IMAGE_QC_SCHEMA', 'ingest_image', 'ingest_image_shard', 'summarize_image_qc'],
    "folds": ['make_folds', 'write_folds', 'read_folds', 'fold_split'],
    "metadata": ['check_model_metadata', 'metadata_values', 'Standardizer'],
})
