"""Data: the sample sheet, ingest and QC of raw runs and images, folds, metadata columns, synthetic demo data sets."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "demo": ['SpectraLibrary', 'load_spectra_library', 'split_sizes_for', 'RunPlan', 'plan_run', 'pick_compound', 'run_labels', 'oven_temperature', 'run_duration', 'elution_time', 'peak_profile', 'spectrum_vector', 'expected_counts', 'acquire', 'run_csv_bytes', 'write_run', 'sample_splits', 'generate_demo_dataset', 'write_tables'],
    "folds": ['write_folds', 'read_label_files', 'check_label_values', 'make_folds', 'stratification_matrix', 'iterative_stratification', 'rarest_label', 'choose_fold', 'imbalance', 'fold_counts', 'refine_by_moves', 'best_move', 'read_folds', 'fold_split'],
    "images": ['representation_settings', 'is_image_representation', 'ImageSpec', 'open_image', 'image_pixels', 'ingest_image', 'image_qc_table', 'ingest_image_shard', 'summarize_image_qc', 'write_image_qc_summary', 'unit_pixels', 'convert_channels', 'resize_plane', 'render_image', 'read_decoded', 'render_image_shard'],
    "ingest": ['qc_settings', 'read_raw_bytes', 'check_md5', 'file_digests', 'header_columns', 'wanted_columns', 'check_columns', 'parse_csv', 'raise_bad_cell', 'first_row', 'nonfinite_rows', 'to_arrays', 'clean_intensity', 'round_masses', 'time_order', 'ingest_run', 'cached_run', 'write_run', 'ingest_shard', 'qc_table', 'read_qc_tables', 'summarize_qc', 'md5_lines', 'problem_lines', 'worst_lines', 'sheet_lines', 'write_qc_summary'],
    "metadata": ['check_model_metadata', 'metadata_values', 'Standardizer'],
    "particles": ['draw_particle', 'compose', 'shape_measurements', 'particle_metadata', 'image_bytes_kind', 'save_image', 'balanced_classes', 'test_split', 'generate_particle_dataset'],
    "sheet": ['RunColumns', 'run_columns', 'shard_of', 'load_sample_sheet', 'read_metadata', 'require_filled', 'require_unique', 'md5_column', 'derivatized_flags', 'unlabelled_findings', 'load_labels', 'read_label_file', 'sample_sheet'],
})
