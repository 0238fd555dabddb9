"""Provenance: sidecar records beside every artefact, lineage, code versions from import closures."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "code": ['module_path', 'direct_imports', 'import_closure', 'script_imports', 'modules_version', 'code_version', 'script_code_version'],
    "job": ['ProvenanceRecorder', 'named_items', 'provenance_for', 'setup_job_logging', 'job_context'],
    "lineage": ['find_sidecar', 'summarise', 'input_entries', 'node_from_record', 'resolve', 'build_lineage', 'mark_file_hashes', 'mark_stale_inputs', 'build_inputs_lineage', 'normalise_inputs', 'short', 'key_params', 'format_lineage', 'add_lineage_arguments', 'run_lineage', 'main'],
    "records": ['sha256_file', 'package_versions', 'provenance_path', 'device_info', 'now_iso', 'current_user', 'tree_files', 'stat_signature', 'sha256_tree', 'recorded_sha256', 'content_sha256', 'describe_input', 'describe_inputs', 'iter_input_paths', 'as_iso', 'write_provenance', 'content_sha256_fresh', 'read_provenance'],
})
