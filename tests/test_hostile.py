"""Hostile and broken input (issue 11): a corpus of one bad copy per kind, made here from the
tiny generated data set, with the outcome each must have. docs/input-errors.md lists the
same kinds.

Every case either raises an :class:`InputError` whose message names the file, the row or
column where there is one, and a fix, or is handled and counted; none reads a file outside
``data.dir``, none shows a traceback without the file's name.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from spectrovision.config.schema import validate_config
from spectrovision.data.folds import fold_split, read_folds, write_folds
from spectrovision.data.ingest import ingest_run, ingest_shard, write_qc_summary
from spectrovision.data.sheet import (MAX_SAMPLE_ID_LENGTH, labelled_table, load_sample_sheet,
                                      run_columns, write_labelled_sheet)
from spectrovision.errors import InputError
from spectrovision.io import output_mode, write_text
from spectrovision.provenance.records import provenance_path

MARS2 = run_columns(validate_config({"data": {"layout": "mars2"}})["data"])
SECRET = "top-secret-line-outside-the-data-folder"


# --- helpers -------------------------------------------------------------------------------
@pytest.fixture
def data(tiny_mars2: Path, tmp_path: Path) -> Path:
    """A writable copy of the tiny data set (tables and runs)."""
    out = tmp_path / "data"
    shutil.copytree(tiny_mars2, out)
    return out


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside data.dir that must never be read (its text must never be shown)."""
    path = tmp_path / "elsewhere" / "secret.csv"
    path.parent.mkdir()
    path.write_text(f"time,mass,intensity\n{SECRET}\n")
    return path


def config(data_dir: Path, task: str = "multilabel", **data_keys: Any) -> dict[str, Any]:
    return validate_config({"task": task, "data": {"layout": "mars2", "dir": str(data_dir),
                                                   **data_keys},
                            "workflow": {"shards": 2}, "models": {}})


def metadata(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "metadata.csv", dtype=str, keep_default_na=False)


def edit_metadata(data_dir: Path, row: int, column: str, value: str) -> str:
    """Set one metadata cell; returns that row's sample id."""
    meta = metadata(data_dir)
    meta.loc[row, column] = value
    meta.to_csv(data_dir / "metadata.csv", index=False)
    return str(meta.loc[row, "sample_id"])


def sheet_error(cfg: dict[str, Any], file_name: str, row: int | None, column: str | None
                ) -> InputError:
    """The InputError of reading the sheet: it names the file, row, column and a fix."""
    with pytest.raises(InputError) as info:
        load_sample_sheet(cfg)
    err = info.value
    assert Path(err.path).name == file_name and err.path in str(err)
    assert (err.row, err.column) == (row, column)
    assert err.fix and "Fix: " in str(err) and "np.float" not in str(err)
    return err


def first_run(data_dir: Path) -> Path:
    return data_dir / metadata(data_dir)["features_path"].iloc[0]


def run_error(path: Path, **qc: Any) -> InputError:
    """The InputError of ingesting one run file: names the file, holds a fix, no reprs."""
    with pytest.raises(InputError) as info:
        ingest_run(path, MARS2, qc)
    err = info.value
    assert err.path == str(path) and str(path) in str(err)
    assert err.fix and "Fix: " in str(err) and "np.float" not in str(err)
    assert len(str(err)) < 1000  # no dump of the file's bytes
    return err


# --- 1. containment: nothing outside data.dir ----------------------------------------------
def test_absolute_path_outside_is_refused_naming_row_and_sample(data, outside):
    sample = edit_metadata(data, 3, "features_path", str(outside))
    err = sheet_error(config(data), "metadata.csv", 5, "features_path")
    assert sample in err.problem and "outside data.dir" in err.problem
    assert "data.extra_roots" in err.fix and SECRET not in str(err)


def test_dotdot_path_is_refused(data, outside):
    sample = edit_metadata(data, 0, "features_path", "../elsewhere/secret.csv")
    err = sheet_error(config(data), "metadata.csv", 2, "features_path")
    assert sample in err.problem and str(outside) in err.problem


def test_symlink_pointing_out_is_refused(data, outside):
    link = first_run(data)
    link.unlink()
    link.symlink_to(outside)
    err = sheet_error(config(data), "metadata.csv", 2, "features_path")
    assert "outside data.dir" in err.problem and SECRET not in str(err)


def test_symlink_loop_is_a_clear_error_not_runtime_error(data):
    run = first_run(data)
    run.unlink()
    run.symlink_to(run.with_name("loop_b.csv"))
    run.with_name("loop_b.csv").symlink_to(run)
    err = sheet_error(config(data), "metadata.csv", 2, "features_path")
    assert "symlink loop" in err.problem


def test_links_and_dotdot_that_stay_inside_are_accepted(data):
    run = first_run(data)
    link = data / "linked.csv"
    link.symlink_to(run)
    edit_metadata(data, 0, "features_path", "linked.csv")
    edit_metadata(data, 1, "features_path", "train_features/../" + metadata(data)
                  ["features_path"].iloc[1])
    sheet = load_sample_sheet(config(data))
    assert sheet["features_path"].iloc[0] == str(run.resolve())
    assert ".." not in sheet["features_path"].iloc[1]


def test_extra_roots_allow_a_named_folder_outside(data, outside):
    edit_metadata(data, 0, "features_path", str(outside))
    sheet = load_sample_sheet(config(data, extra_roots=[str(outside.parent)]))
    assert sheet["features_path"].iloc[0] == str(outside.resolve())


def test_nothing_outside_is_opened_when_the_sheet_refuses_it(data, tmp_path):
    fifo = tmp_path / "pipe.csv"  # opening a FIFO for reading would block this test
    os.mkfifo(fifo)
    edit_metadata(data, 0, "features_path", str(fifo))
    sheet_error(config(data), "metadata.csv", 2, "features_path")


# --- 2. sample-sheet checks at parse time --------------------------------------------------
@pytest.mark.parametrize("value, hint", [("Train", "'train'"), ("train ", "'train'"),
                                         ("validation", "val")])
def test_unknown_split_is_an_error_naming_the_row(data, value, hint):
    edit_metadata(data, 2, "split", value)
    err = sheet_error(config(data), "metadata.csv", 4, "split")
    assert repr(value) in err.problem and hint in err.fix


@pytest.mark.parametrize("value", ["2", "0.5", "-1"])
def test_label_value_not_0_or_1_is_an_error_naming_file_row_column(data, value):
    labels = pd.read_csv(data / "train_labels.csv", dtype=str)
    column = labels.columns[3]
    labels.loc[4, column] = value
    labels.to_csv(data / "train_labels.csv", index=False)
    err = sheet_error(config(data), "train_labels.csv", 6, column)
    assert f"label value {value} is not 0 or 1" in err.problem


def one_hot_labels(data_dir: Path) -> None:
    """Rewrite the label files as 3-class one-hot tables (exactly one 1 per row)."""
    for name in ("train_labels.csv", "val_labels.csv"):
        ids = pd.read_csv(data_dir / name, dtype=str)["sample_id"]
        classes = np.arange(len(ids)) % 3
        table = pd.DataFrame({"sample_id": ids})
        for k, cls in enumerate(("a", "b", "c")):
            table[cls] = (classes == k).astype(int)
        table.to_csv(data_dir / name, index=False)


@pytest.mark.parametrize("row_values", [[1, 1, 0], [0, 0, 0]])
def test_multiclass_rows_need_exactly_one_class(data, row_values):
    one_hot_labels(data)
    assert load_sample_sheet(config(data, task="multiclass")).attrs["labels"] == ["a", "b", "c"]
    labels = pd.read_csv(data / "val_labels.csv", dtype=str)
    labels.loc[1, ["a", "b", "c"]] = [str(v) for v in row_values]
    labels.to_csv(data / "val_labels.csv", index=False)
    err = sheet_error(config(data, task="multiclass"), "val_labels.csv", 3, "sample_id")
    assert f"{sum(row_values)} classes" in err.problem and "exactly one" in err.fix
    load_sample_sheet(config(data))  # multilabel: several or no labels are fine


def test_too_long_sample_id_is_an_error(data):
    long_id = "S" * 300
    edit_metadata(data, 0, "sample_id", long_id)
    labels = pd.read_csv(data / "train_labels.csv", dtype=str)
    labels.loc[0, "sample_id"] = long_id
    labels.to_csv(data / "train_labels.csv", index=False)
    err = sheet_error(config(data), "metadata.csv", 2, "sample_id")
    assert "300 characters" in err.problem and str(MAX_SAMPLE_ID_LENGTH) in err.problem


def test_submission_ids_are_checked_against_the_sheet(data):
    template = pd.read_csv(data / "submission_format.csv", dtype=str)
    template.loc[2, "sample_id"] = "S9999"
    template.to_csv(data / "submission_format.csv", index=False)
    err = sheet_error(config(data), "submission_format.csv", 4, "sample_id")
    assert "'S9999'" in err.problem and "submission_format: null" in err.fix
    load_sample_sheet(config(data, submission_format=None))  # not configured: not checked
    template.loc[2, "sample_id"] = template.loc[1, "sample_id"]
    template.to_csv(data / "submission_format.csv", index=False)
    err = sheet_error(config(data), "submission_format.csv", 4, "sample_id")
    assert "duplicate" in err.problem


@pytest.mark.parametrize("name", ["metadata.csv", "train_labels.csv"])
def test_a_table_that_is_not_utf8_text_is_named(data, name):
    text = (data / name).read_text()
    (data / name).write_bytes(text.encode("utf-16"))
    err = sheet_error(config(data), name, None, None)
    assert "not UTF-8 text" in err.problem


def test_two_samples_naming_one_file_is_an_error_naming_both_rows(data):
    first = metadata(data).loc[1, "features_path"]
    link = data / "same_run.csv"
    link.symlink_to(data / first)
    for path in (first, "same_run.csv", "train_features/../" + first):  # also via a link, ..
        sample = edit_metadata(data, 3, "features_path", path)
        err = sheet_error(config(data), "metadata.csv", 5, "features_path")
        other = metadata(data).loc[1, "sample_id"]
        assert f"'{other}' (row 3) and '{sample}' (row 5) name the same file" in err.problem
        assert "keep one" in err.fix and "leaks" in err.fix


def test_identical_files_under_two_paths_are_a_qc_finding(data, tmp_path):
    meta = metadata(data)
    (data / meta.loc[3, "features_path"]).write_bytes((data / meta.loc[1, "features_path"])
                                                      .read_bytes())
    edit_metadata(data, 3, "features_md5_hash", meta.loc[1, "features_md5_hash"])
    sheet = load_sample_sheet(config(data))  # two paths: not refused when the sheet is read
    records = sheet[["sample_id", "features_path", "md5"]].to_dict(orient="records")
    qc_dir = tmp_path / "qc"
    ingest_shard(records, tmp_path / "runs", qc_dir / "shard0.parquet", MARS2)
    write_qc_summary([qc_dir / "shard0.parquet"], qc_dir / "qc.parquet",
                     qc_dir / "qc_summary.md", sheet.attrs["findings"])
    summary = (qc_dir / "qc_summary.md").read_text()
    line = next(line for line in summary.splitlines() if "identical files" in line)
    assert f"2 sample(s): {meta.loc[1, 'sample_id']}, {meta.loc[3, 'sample_id']}" in line
    assert meta.loc[1, "features_md5_hash"] in line and "No findings" not in summary


def test_features_path_that_is_a_folder_names_sample_and_row(data):
    sample = edit_metadata(data, 2, "features_path", "train_features")
    err = sheet_error(config(data), "metadata.csv", 4, "features_path")
    assert f"of sample '{sample}' is a directory" in err.problem and "inside" in err.fix
    with pytest.raises(InputError, match="run file is a directory"):  # ingest says so too
        ingest_run(data / "train_features", MARS2)


@pytest.mark.parametrize("name", ["NA", "null", "None", "nan"])
def test_a_sample_named_like_a_missing_value_keeps_its_name(data, tmp_path, name):
    """pandas reads NA, null, None, nan as missing by default: ids are read as written, in
    the metadata, the label files, the submission format and folds.csv."""
    old = metadata(data).loc[0, "sample_id"]
    edit_metadata(data, 0, "sample_id", name)
    for table in ("train_labels.csv", "submission_format.csv"):
        text = (data / table).read_text()
        (data / table).write_text(text.replace(f"\n{old},", f"\n{name},"))
    sheet = load_sample_sheet(config(data))
    assert sheet["sample_id"].iloc[0] == name and sheet["labelled"].iloc[0]
    assert sheet.attrs["label_table"].index[0] == name
    write_labelled_sheet(labelled_table(sheet), tmp_path / "labelled.parquet")
    write_folds(tmp_path / "labelled.parquet", sheet.attrs["labels"], tmp_path / "folds.csv",
                n_folds=2, seed=0)
    folds = read_folds(tmp_path / "folds.csv")
    assert name in set(folds["sample_id"]) and folds["sample_id"].notna().all()
    assert name in fold_split(folds, 0)[0] + fold_split(folds, 0)[1]


@pytest.mark.parametrize("name, sep, sep_name", [("metadata.csv", ";", "semicolon"),
                                                 ("train_labels.csv", "\t", "tab")])
def test_a_table_with_another_separator_gets_the_separator_hint(data, name, sep, sep_name):
    table = pd.read_csv(data / name, dtype=str, keep_default_na=False)
    table.to_csv(data / name, sep=sep, index=False)
    err = sheet_error(config(data), name, 1, None)
    assert f"header is {sep_name}-separated" in err.problem and "commas" in err.fix


def test_missing_train_labels_file_is_named(data):
    (data / "train_labels.csv").unlink()  # val_labels.csv is still there
    err = sheet_error(config(data), "train_labels.csv", None, None)
    assert err.problem.startswith("label file not found") and "split 'train'" in err.problem
    assert "metadata.csv row 2" in err.problem
    assert "put train_labels.csv" in err.fix and "data.labels_files" in err.fix


@pytest.mark.parametrize("name, column", [("metadata.csv", "derivatized"),
                                          ("train_labels.csv", None)])
def test_a_column_name_given_twice_is_an_error(data, name, column):
    table = pd.read_csv(data / name, dtype=str, keep_default_na=False)
    column = column or table.columns[2]
    other = table.columns[list(table.columns).index(column) - 1]
    table = table.rename(columns={other: column})  # two columns named alike, other values
    table.to_csv(data / name, index=False)
    err = sheet_error(config(data), name, 1, column)
    assert f"column name '{column}' appears twice" in err.problem and "rename" in err.fix


# --- 3. run files --------------------------------------------------------------------------
def corrupt(path: Path, change: Callable[[list[str]], list[str]]) -> Path:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")
    return path


def set_cell(lines: list[str], line: int, value: str) -> list[str]:
    """Replace the intensity (last field) of a 1-based file line."""
    lines[line - 1] = lines[line - 1].rsplit(",", 1)[0] + "," + value
    return lines


def test_value_beyond_float32_is_an_error_never_inf_in_the_cache(data):
    path = corrupt(first_run(data), lambda lines: set_cell(lines, 5, "1e39"))
    err = run_error(path)
    assert (err.row, err.column) == (5, "intensity") and "1e+39" in err.problem
    assert "float32" in err.problem
    run, record = ingest_run(path, MARS2, {"nonfinite": "drop"})  # the documented handling
    assert record["nonfinite_dropped"] == 1 and np.isfinite(run["intensity"]).all()


def test_header_with_spaces_after_commas_names_the_column(data):
    path = corrupt(first_run(data), lambda lines: [lines[0].replace(",", ", ")] + lines[1:])
    err = run_error(path)
    assert (err.row, err.column) == (1, "mass") and "spaces" in err.problem


@pytest.mark.parametrize("kind, encode, expected", [
    ("gzip", gzip.compress, "gzip"),
    ("utf16", lambda b: b.decode().encode("utf-16"), "UTF-16"),
    ("utf16le", lambda b: b.decode().encode("utf-16-le"), "UTF-16"),
    ("binary", lambda b: bytes(range(256)) * 32, "binary"),
])
def test_not_a_text_csv_names_the_kind_not_the_bytes(data, kind, encode, expected):
    path = first_run(data)
    path.write_bytes(encode(path.read_bytes()))
    err = run_error(path)
    assert err.problem.startswith("not a text CSV") and expected in err.problem


def test_semicolon_separated_file_gets_a_separator_hint(data):
    path = corrupt(first_run(data), lambda lines: [line.replace(",", ";") for line in lines])
    err = run_error(path)
    assert err.row == 1 and "semicolon" in err.problem and "commas" in err.fix


@pytest.mark.parametrize("change, fields", [(lambda v: v.rsplit(",", 1)[0], 2),
                                            (lambda v: v + ",7", 4)])
def test_ragged_line_is_named(data, change, fields):
    def ragged(lines: list[str]) -> list[str]:
        lines[6] = change(lines[6])
        return lines

    err = run_error(corrupt(first_run(data), ragged))
    assert err.row == 7 and f"line 7 has {fields} value(s), the header has 3" in err.problem


def test_messages_show_plain_numbers(data):
    path = corrupt(first_run(data), lambda lines: set_cell(lines, 3, "-2.5"))
    err = run_error(path, negative_intensity="error")
    assert "the first is -2.5" in err.problem


def test_every_row_dropped_is_an_error_not_an_empty_image(data):
    path = corrupt(first_run(data), lambda lines: [lines[0]] + [
        ",".join([line.split(",")[0], "4", line.split(",")[2]]) for line in lines[1:]])
    err = run_error(path)
    assert "only 0 row(s) left" in err.problem and "qc.min_rows" in err.fix


def test_run_shorter_than_min_rows_is_an_error(data):
    path = corrupt(first_run(data), lambda lines: lines[:6])  # header + 5 rows
    run, record = ingest_run(path, MARS2, {})  # default min_rows 2: fine
    kept = record["n_rows"]
    err = run_error(path, min_rows=kept + 1)
    assert f"only {kept} row(s) left" in err.problem


def test_a_run_column_given_twice_is_an_error(data):
    path = corrupt(first_run(data), lambda lines: [lines[0] + ",mass"] + [
        line + ",0" for line in lines[1:]])
    err = run_error(path)
    assert (err.row, err.column) == (1, "mass") and "(columns 2 and 4)" in err.problem


def constant_time(lines: list[str]) -> list[str]:
    return [lines[0]] + ["12.5," + line.split(",", 1)[1] for line in lines[1:]]


def test_constant_times_are_an_error_not_a_one_column_image(data):
    path = corrupt(first_run(data), constant_time)  # or a run of one scan: the same
    err = run_error(path)
    assert err.column == "time" and "have the same time (12.5)" in err.problem
    assert "single scan" in err.problem and "data.columns.time" in err.fix
    # line 2 is the scan's helium row (dropped): keep lines 3-5, two of them at one time
    two_times = corrupt(first_run(data), lambda lines: constant_time([lines[0], *lines[2:4]])
                        + ["13.0," + lines[4].split(",", 1)[1]])
    assert ingest_run(two_times, MARS2, {})[1]["n_rows"] == 3  # two distinct times: fine
    one_row = corrupt(first_run(data), lambda lines: lines[:1] + lines[3:4])
    assert ingest_run(one_row, MARS2, {"min_rows": 1})[1]["n_rows"] == 1  # qc.min_rows' call


# --- 4. QC outputs are never stale ---------------------------------------------------------
def test_failed_reingest_leaves_no_stale_summary_or_sidecar(data, tmp_path):
    sheet = load_sample_sheet(config(data))
    records = sheet[["sample_id", "features_path", "md5"]].to_dict(orient="records")
    results = tmp_path / "results"
    runs, qc_dir = results / "runs" / "shard0", results / "qc"
    ingest_shard(records, runs, qc_dir / "shard0.parquet", MARS2)
    write_qc_summary([qc_dir / "shard0.parquet"], qc_dir / "qc.parquet",
                     qc_dir / "qc_summary.md", sheet.attrs["findings"])
    sidecars = [provenance_path(p) for p in (runs, qc_dir / "shard0.parquet",
                                             qc_dir / "qc.parquet")]
    for sidecar in sidecars:  # what job_context wrote after the successful jobs
        sidecar.write_text("{}")
    assert "No findings" in (qc_dir / "qc_summary.md").read_text()

    corrupt(Path(records[-1]["features_path"]), lambda lines: set_cell(lines, 4, "oops"))
    with pytest.raises(InputError, match="row 4, column 'intensity'"):
        ingest_shard(records, runs, qc_dir / "shard0.parquet", MARS2, {"check_md5": False})
    assert not (qc_dir / "qc_summary.md").exists() and not (qc_dir / "qc.parquet").exists()
    assert not any(s.exists() for s in sidecars)


# --- 5. outputs are group-readable ---------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert output_mode() == mode
        write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == mode
