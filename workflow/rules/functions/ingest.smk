# Input functions and helpers of the ingest stage's rules (workflow/rules/ingest.smk).
import dataclasses

from spectrovision.data.sheet import run_columns


def get_shard_raw_runs(wildcards):
    """Raw run files of one ingest shard."""
    return list(shard_table(wildcards.shard)["features_path"])


_SHARD_RECORDS = {}


def sheet_records(shard=None):
    """Sample-sheet rows (as dicts) that ingest needs, for one shard or all (the per-shard
    lists are made once, in one to_dict: params are evaluated several times per job)."""
    if shard is not None and _SHARD_RECORDS:
        return _SHARD_RECORDS.get(int(shard), [])
    cols = [c for c in _PLAIN_SHEET.columns if c not in ("labelled", "shard")]
    records = _PLAIN_SHEET[cols].to_dict(orient="records")
    if shard is None:
        return records
    for sheet_shard, record in zip(_PLAIN_SHEET["shard"], records):
        _SHARD_RECORDS.setdefault(int(sheet_shard), []).append(record)
    return _SHARD_RECORDS.get(int(shard), [])


def ingest_columns():
    """The run-file column names of the layout (data.layout, data.columns) as a plain dict."""
    return dataclasses.asdict(run_columns(CFG["data"]))
