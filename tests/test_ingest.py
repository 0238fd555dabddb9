"""Ingest + QC: one generated file per problem kind (fatal ones name file, row/column and the
fix; tolerated ones are cleaned and counted), each qc.* switch, the sample-sheet checks, the
QC summary, the Snakemake rules, and the real Mars-1/Mars-2 files when ../shared/data exists."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from spectrovision.config.schema import validate_config
from spectrovision.data.sheet import RunColumns, load_sample_sheet, run_columns, sample_sheet
from spectrovision.errors import ConfigError, InputError
from spectrovision.data.ingest import (QC_COUNTS, QC_DEFAULTS, QC_SCHEMA, ingest_run, ingest_shard, qc_table,
                                  summarize_qc, write_qc_summary)
from spectrovision.io import write_parquet
from spectrovision.render.runs import RenderSpec, read_run
from support import data_block, derived_config, render_spec, run_snakemake, unlabelled_batch, write_config

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
MARS1 = SHARED / "mars1-subset"
MARS2 = SHARED / "mars2-labels"
MARS2_COLUMNS = run_columns(data_block(layout="mars2"))
MARS1_COLUMNS = run_columns(data_block(layout="mars1"))
HEADER = "time,mass,intensity\n"


def run_file(tmp_path: Path, body: str, header: str = HEADER, name: str = "S0001.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + body)
    return path


def ingest(path: Path, columns: RunColumns = MARS2_COLUMNS, md5: str | None = None,
           **qc: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    return ingest_run(path, columns, qc, md5)


def fatal(path: Path, columns: RunColumns = MARS2_COLUMNS, md5: str | None = None,
          **qc: Any) -> InputError:
    """The InputError ingest raises; its message names the file and holds a fix."""
    with pytest.raises(InputError) as info:
        ingest_run(path, columns, qc, md5)
    err = info.value
    assert err.path == str(path) and str(path) in str(err)
    assert "Fix: " in str(err) and err.fix
    return err


CLEAN = "0.1,18.0,100\n0.2,28.0,200\n0.3,44.0,300\n"


# --- the cached-run contract ---------------------------------------------------------------
def test_clean_run_has_the_contract_types_and_values(tmp_path):
    run, record = ingest(run_file(tmp_path, CLEAN))
    assert list(run.columns) == ["time", "mass", "intensity"]
    assert [str(t) for t in run.dtypes] == ["float32", "int16", "float32"]
    assert run["mass"].tolist() == [18, 28, 44]
    assert run["intensity"].tolist() == [100, 200, 300]
    assert np.allclose(run["time"], [0.1, 0.2, 0.3])
    assert record["n_rows_raw"] == record["n_rows"] == 3
    assert all(record[name] == 0 for name in QC_COUNTS)
    data = (tmp_path / "S0001.csv").read_bytes()
    assert record["md5"] == hashlib.md5(data).hexdigest()
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["md5_ok"] is None  # no checksum given


# --- fatal kinds ---------------------------------------------------------------------------
def test_missing_file_is_fatal(tmp_path):
    err = fatal(tmp_path / "absent.csv")
    assert "not found" in err.problem and "features_path" in err.fix


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_file_is_fatal(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    assert "empty" in fatal(path).problem


def test_header_without_rows_is_fatal(tmp_path):
    assert "no data rows" in fatal(run_file(tmp_path, "")).problem


def test_missing_column_is_fatal_naming_found_and_expected(tmp_path):
    err = fatal(run_file(tmp_path, "0.1,18,100\n", header="time,mz,intensity\n"))
    assert err.row == 1 and err.column == "mass"
    assert "'mz'" in err.problem and "'mass'" in err.problem and "data.columns" in err.fix
    assert "row 1, column 'mass'" in str(err)


def test_renamed_columns_of_another_layout_suggest_that_layout(tmp_path):
    path = run_file(tmp_path, "0.1,30.0,18.0,-1.5\n", header="time,temp,m/z,abundance\n")
    err = fatal(path)  # a Mars-1 file read with the Mars-2 layout
    assert "data.layout: mars1" in err.fix


def test_non_numeric_cell_is_fatal_with_line_and_column(tmp_path):
    err = fatal(run_file(tmp_path, "0.1,18,100\n0.2,28,200\n0.3,44,12x\n"))
    assert (err.row, err.column) == (4, "intensity")  # header is line 1
    assert "'12x'" in err.problem and "row 4, column 'intensity'" in str(err)


def test_malformed_line_is_fatal(tmp_path):
    err = fatal(run_file(tmp_path, "0.1,18,100\n0.2,28\n"))
    assert "well-formed" in err.problem


def test_negative_mass_is_fatal(tmp_path):
    err = fatal(run_file(tmp_path, "0.1,18,100\n0.2,-3,5\n"))
    assert (err.row, err.column) == (3, "mass")


def test_md5_match_mismatch_and_switch(tmp_path):
    path = run_file(tmp_path, CLEAN)
    good = hashlib.md5(path.read_bytes()).hexdigest()
    assert ingest(path, md5=good.upper())[1]["md5_ok"] is True
    err = fatal(path, md5="0" * 32)
    assert "md5" in err.problem and good in err.problem and "check_md5" in err.fix
    _, record = ingest(path, md5="0" * 32, check_md5=False)  # switched off: not checked
    assert record["md5_ok"] is None and record["md5"] == good


# --- NaN / inf -----------------------------------------------------------------------------
NONFINITE = "0.1,18,100\n0.2,28,nan\n0.3,44,inf\n0.4,,5\n0.5,32,7\n"


def test_nonfinite_is_fatal_by_default(tmp_path):
    err = fatal(run_file(tmp_path, NONFINITE))
    assert (err.row, err.column) == (3, "intensity") and "nonfinite: drop" in err.fix
    assert err.problem.startswith("3 row(s)")  # every bad row counted, not one column's
    err = fatal(run_file(tmp_path, "0.1,18,100\n0.2,,5\n"))
    assert (err.row, err.column) == (3, "mass")  # an empty cell, too


def test_nonfinite_drop_removes_and_counts_the_rows(tmp_path):
    run, record = ingest(run_file(tmp_path, NONFINITE), nonfinite="drop")
    assert run["mass"].tolist() == [18, 32] and run["intensity"].tolist() == [100, 7]
    assert record["nonfinite_dropped"] == 3
    assert (record["n_rows_raw"], record["n_rows"]) == (5, 2)


def test_values_are_checked_in_the_cached_float32(tmp_path):
    path = run_file(tmp_path, "0.1,18,100\n0.2,28,3.5e38\n0.3,44,3e38\n")
    err = fatal(path)  # 3.5e38 is finite as float64 but inf as float32
    assert (err.row, err.column) == (3, "intensity") and "3.5e+38" in err.problem
    run, record = ingest(path, nonfinite="drop")
    assert record["nonfinite_dropped"] == 1 and np.isfinite(run["intensity"]).all()


def test_qc_defaults_of_the_library_are_the_schema_defaults():
    assert validate_config({"models": {}})["qc"] == QC_DEFAULTS


def test_min_rows_counts_the_rows_left_after_cleaning(tmp_path):
    path = run_file(tmp_path, "0.1,4,1\n0.2,18,2\n0.3,4,3\n")  # two helium rows
    err = fatal(path)
    assert "only 1 row(s) left" in err.problem and "2 at qc.drop_masses" in err.problem
    assert ingest(path, min_rows=1)[1]["n_rows"] == 1


# --- negative intensity --------------------------------------------------------------------
NEGATIVE = "0.1,18,100\n0.2,28,-5.5\n0.3,44,-0.25\n"


def test_negative_intensity_is_clipped_and_counted_by_default(tmp_path):
    run, record = ingest(run_file(tmp_path, NEGATIVE))
    assert run["intensity"].tolist() == [100, 0, 0]
    assert record["negative_intensity"] == 2 and record["n_rows"] == 3


def test_negative_intensity_keep_and_error(tmp_path):
    path = run_file(tmp_path, NEGATIVE)
    run, record = ingest(path, negative_intensity="keep")
    assert run["intensity"].tolist() == [100, -5.5, -0.25]
    assert record["negative_intensity"] == 2
    err = fatal(path, negative_intensity="error")
    assert (err.row, err.column) == (3, "intensity") and "negative_intensity" in err.fix


# --- unsorted time -------------------------------------------------------------------------
UNSORTED = "0.1,18,1\n0.3,28,2\n0.2,44,3\n0.4,32,4\n0.35,40,5\n"


def test_unsorted_time_is_sorted_and_counted(tmp_path):
    run, record = ingest(run_file(tmp_path, UNSORTED))
    assert np.allclose(run["time"], [0.1, 0.2, 0.3, 0.35, 0.4])
    assert run["mass"].tolist() == [18, 44, 28, 40, 32]  # rows move with their time
    assert run["intensity"].tolist() == [1, 3, 2, 5, 4]
    assert record["unsorted_time"] == 2


def test_unsorted_time_error(tmp_path):
    err = fatal(run_file(tmp_path, UNSORTED), unsorted_time="error")
    assert (err.row, err.column) == (4, "time") and "sort" in err.fix


# --- fractional masses, dropped masses, max mass -------------------------------------------
FRACTIONAL = "0.1,4.09,400000\n0.1,17.96,10\n0.2,28.4,20\n0.2,44.0,30\n0.3,3.98,50000\n"


def test_fractional_masses_are_rounded_counted_and_helium_dropped(tmp_path):
    run, record = ingest(run_file(tmp_path, FRACTIONAL))
    assert run["mass"].tolist() == [18, 28, 44]  # 4.09 and 3.98 round to helium, removed
    assert run["intensity"].tolist() == [10, 20, 30]
    assert record["fractional_mass"] == 4 and record["dropped_mass"] == 2
    assert (record["n_rows_raw"], record["n_rows"]) == (5, 3)


def test_fractional_mass_error(tmp_path):
    err = fatal(run_file(tmp_path, FRACTIONAL), fractional_mass="error")
    assert (err.row, err.column) == (2, "mass") and "4.09" in err.problem


def test_drop_masses_switch(tmp_path):
    path = run_file(tmp_path, FRACTIONAL)
    run, record = ingest(path, drop_masses=[])
    assert run["mass"].tolist() == [4, 18, 28, 44, 4] and record["dropped_mass"] == 0
    run, record = ingest(path, drop_masses=[4, 28])
    assert run["mass"].tolist() == [18, 44] and record["dropped_mass"] == 3


def test_masses_above_max_are_removed_and_counted(tmp_path):
    run, record = ingest(run_file(tmp_path, "0.1,18,1\n0.2,250,2\n0.3,251,3\n"), max_mass=250)
    assert run["mass"].tolist() == [18, 250] and record["above_max_mass"] == 1


# --- layouts -------------------------------------------------------------------------------
def test_mars1_layout_keeps_temperature(tmp_path):
    path = run_file(tmp_path, "0.0,30.5,0.0,1e-10\n0.0,30.5,1.0,-2e-12\n1.5,31.0,18.0,3e-9\n",
                    header="time,temp,m/z,abundance\n")
    run, record = ingest(path, MARS1_COLUMNS)
    assert list(run.columns) == ["time", "mass", "intensity", "temp"]
    assert str(run["temp"].dtype) == "float32" and np.allclose(run["temp"], [30.5, 30.5, 31])
    assert run["mass"].tolist() == [0, 1, 18]
    assert np.allclose(run["intensity"], [1e-10, 0.0, 3e-9])
    assert record["negative_intensity"] == 1


def test_generic_layout_reads_the_named_columns(tmp_path):
    columns = run_columns(data_block(
        layout="generic", columns={"time": "rt", "mass": "mz", "intensity": "counts"}))
    path = run_file(tmp_path, "1,2.0,0.5,18,9\n1,1.0,0.7,28,8\n",
                    header="scan,rt,noise,mz,counts\n")
    run, record = ingest(path, columns)
    assert list(run.columns) == ["time", "mass", "intensity"]
    assert run["mass"].tolist() == [28, 18] and record["unsorted_time"] == 1
    err = fatal(path, run_columns(data_block(layout="generic")))  # without data.columns
    assert err.column == "time" and "data.columns" in err.fix


# --- shard ingest, cache, and the QC summary -----------------------------------------------
def test_shard_writes_cached_runs_that_render_reads(tmp_path):
    a = run_file(tmp_path, FRACTIONAL, name="a.csv")
    b = run_file(tmp_path, NEGATIVE, name="b.csv")
    records = [{"sample_id": "A1", "features_path": str(a),
                "md5": hashlib.md5(a.read_bytes()).hexdigest()},
               {"sample_id": "B2", "features_path": str(b), "md5": None}]
    qc = ingest_shard(records, tmp_path / "runs", tmp_path / "qc.parquet", MARS2_COLUMNS)
    assert pq.read_schema(tmp_path / "qc.parquet").names == QC_SCHEMA.names
    stored = pd.read_parquet(tmp_path / "qc.parquet")
    assert stored["sample_id"].tolist() == ["A1", "B2"]
    assert stored["md5_ok"].tolist()[0] is True and pd.isna(stored["md5_ok"].iloc[1])
    assert stored["negative_intensity"].tolist() == [0, 2]
    assert stored["dropped_mass"].tolist() == [2, 0]
    assert qc["n_rows"].tolist() == [3, 3]
    for rec in records:
        expected, _ = ingest_run(rec["features_path"], MARS2_COLUMNS)
        cached = pd.read_parquet(tmp_path / "runs" / f"{rec['sample_id']}.parquet")
        pd.testing.assert_frame_equal(cached, expected)
        parts = read_run(tmp_path / "runs" / f"{rec['sample_id']}.parquet", render_spec())
        assert parts["mass"].dtype == np.int16
        assert np.array_equal(parts["intensity"], expected["intensity"].to_numpy())


def test_shard_stops_at_a_fatal_file(tmp_path):
    bad = run_file(tmp_path, "0.1,18,x\n", name="bad.csv")
    with pytest.raises(InputError, match="bad.csv, row 2, column 'intensity'"):
        ingest_shard([{"sample_id": "S", "features_path": str(bad), "md5": None}],
                     tmp_path / "runs", tmp_path / "qc.parquet", MARS2_COLUMNS)
    assert not (tmp_path / "qc.parquet").exists()


def test_qc_summary_counts_problems_and_sheet_findings(tmp_path):
    rows = []
    for name, body in (("neg", NEGATIVE), ("frac", FRACTIONAL), ("clean", CLEAN)):
        _, record = ingest(run_file(tmp_path, body, name=f"{name}.csv"))
        rows.append({"sample_id": name, **record})
    shard0 = tmp_path / "shard0.parquet"
    write_parquet(shard0, qc_table(rows[:2]), schema=QC_SCHEMA)
    findings = {"split 'val' samples without labels": ["V1", "V2"]}
    qc, text = summarize_qc([shard0, qc_table(rows[2:])], findings)
    assert qc["sample_id"].tolist() == ["clean", "frac", "neg"]
    assert "3 runs ingested: 11 rows read, 9 kept." in text
    assert "| negative_intensity | 2 | 1 |" in text
    assert "| fractional_mass | 4 | 1 |" in text and "| dropped_mass | 2 | 1 |" in text
    assert "frac (40.0%)" in text and "neg (66.7%)" in text
    assert "split 'val' samples without labels: 2 sample(s): V1, V2" in text
    write_qc_summary([shard0, qc_table(rows[2:])], tmp_path / "qc.parquet",
                     tmp_path / "qc_summary.md", findings)
    assert (tmp_path / "qc_summary.md").read_text() == text
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "qc.parquet"), qc,
                                  check_dtype=False)


# --- sample sheet --------------------------------------------------------------------------
def sheet_config(data_dir: Path, **data: Any) -> dict[str, Any]:
    return validate_config({"data": {"layout": "mars2", "dir": str(data_dir), **data},
                            "workflow": {"shards": 2}, "models": {}})


@pytest.fixture
def sheet_dir(tiny_mars2: Path, tmp_path: Path) -> Path:
    """A copy of the tiny data set's tables (runs are not needed to load the sheet)."""
    out = tmp_path / "data"
    out.mkdir()
    for name in ("metadata.csv", "train_labels.csv", "val_labels.csv"):
        shutil.copy(tiny_mars2 / name, out / name)
    return out


def test_sheet_duplicate_sample_id_is_fatal(sheet_dir):
    meta = pd.read_csv(sheet_dir / "metadata.csv", dtype=str)
    meta.iloc[5, 0] = meta.iloc[2, 0]
    meta.to_csv(sheet_dir / "metadata.csv", index=False)
    with pytest.raises(InputError) as info:
        load_sample_sheet(sheet_config(sheet_dir))
    err = info.value
    assert (err.row, err.column) == (7, "sample_id") and "duplicate" in err.problem
    assert err.path.endswith("metadata.csv") and "unique" in err.fix


def test_sheet_labels_for_unknown_samples_are_fatal(sheet_dir):
    with (sheet_dir / "train_labels.csv").open("a") as fh:
        fh.write("S9999" + ",0" * 9 + "\n")
    n_rows = len(pd.read_csv(sheet_dir / "train_labels.csv"))
    with pytest.raises(InputError) as info:
        load_sample_sheet(sheet_config(sheet_dir))
    err = info.value
    assert err.path.endswith("train_labels.csv") and "S9999" in err.problem
    assert (err.row, err.column) == (n_rows + 1, "sample_id") and "metadata" in err.fix


def test_sheet_training_samples_without_labels_are_fatal(sheet_dir):
    labels = pd.read_csv(sheet_dir / "train_labels.csv", dtype={"sample_id": str})
    dropped = labels["sample_id"].iloc[1]
    labels.drop(index=1).to_csv(sheet_dir / "train_labels.csv", index=False)
    with pytest.raises(InputError) as info:
        load_sample_sheet(sheet_config(sheet_dir))
    err = info.value
    assert dropped in err.problem and err.column == "split" and "label file" in err.fix
    meta = pd.read_csv(sheet_dir / "metadata.csv", dtype=str)
    assert err.row == int(np.flatnonzero(meta["sample_id"] == dropped)[0]) + 2


def test_sheet_partly_labelled_val_split_is_a_finding(sheet_dir):
    labels = pd.read_csv(sheet_dir / "val_labels.csv", dtype={"sample_id": str})
    dropped = labels["sample_id"].iloc[0]
    labels.iloc[1:].to_csv(sheet_dir / "val_labels.csv", index=False)
    sheet = load_sample_sheet(sheet_config(sheet_dir))
    assert not sheet.set_index("sample_id").loc[dropped, "labelled"]
    assert list(sheet.attrs["findings"].values()) == [[dropped]]


def test_sheet_bad_derivatized_value_is_fatal(sheet_dir):
    meta = pd.read_csv(sheet_dir / "metadata.csv", dtype=str)
    meta.loc[3, "derivatized"] = "yes"
    meta.to_csv(sheet_dir / "metadata.csv", index=False)
    with pytest.raises(InputError) as info:
        load_sample_sheet(sheet_config(sheet_dir))
    assert (info.value.row, info.value.column) == (5, "derivatized")


# --- sample sheet of an unlabelled batch (apply mode) ----------------------------------------
def apply_sheet_config(data_dir: Path, **data: Any) -> dict[str, Any]:
    return {**sheet_config(data_dir, **data), "trained_results": "results/trained"}


@pytest.mark.parametrize("labels_files", [None, []], ids=["no-label-file", "empty-list"])
def test_apply_sheet_without_labels_predicts_every_sample(sheet_dir, labels_files):
    """No label file at all (key left out) and labels_files: [] (label files present but
    not read) both give an apply run a sheet of unlabelled samples."""
    given = {} if labels_files is None else {"labels_files": labels_files}
    unlabelled_batch(sheet_dir, keep_label_files=labels_files is not None)
    sheet = load_sample_sheet(apply_sheet_config(sheet_dir, **given))
    meta = pd.read_csv(sheet_dir / "metadata.csv", dtype=str)
    assert list(sheet["sample_id"]) == list(meta["sample_id"])
    assert not sheet["labelled"].any() and sheet.attrs["labels"] == []
    assert sheet.attrs["label_table"].empty and sheet.attrs["findings"] == {}
    assert set(sheet["shard"]) <= {2, 3}  # unlabelled shards, never a training one
    # the scripts' sheet (a data block only) takes the same batch when told it is applied
    data = apply_sheet_config(sheet_dir, **given)["data"]
    assert len(sample_sheet(data, labels_required=False)) == len(meta)
    refused = (InputError, "no label file found") if labels_files is None else \
        (ConfigError, "data/labels_files")  # ... and a training run's sheet refuses it
    with pytest.raises(refused[0], match=refused[1]):
        sample_sheet(data)


def test_apply_sheet_without_labels_keeps_the_other_checks(sheet_dir):
    unlabelled_batch(sheet_dir)
    meta = pd.read_csv(sheet_dir / "metadata.csv", dtype=str)
    meta.loc[4, "split"] = "train"  # a train sample must still have labels
    meta.to_csv(sheet_dir / "metadata.csv", index=False)
    with pytest.raises(InputError) as info:
        load_sample_sheet(apply_sheet_config(sheet_dir))
    assert (info.value.row, info.value.column) == (6, "split")
    assert meta["sample_id"].iloc[4] in info.value.problem
    meta.loc[4, "split"] = "Test"
    meta.to_csv(sheet_dir / "metadata.csv", index=False)
    with pytest.raises(InputError, match="exactly as 'test'"):
        load_sample_sheet(apply_sheet_config(sheet_dir))


def test_apply_sheet_checks_the_label_files_it_has(sheet_dir):
    unlabelled_batch(sheet_dir, keep_label_files=True)
    labels = pd.read_csv(sheet_dir / "val_labels.csv", dtype={"sample_id": str})
    labels.iloc[2, 3] = 2
    labels.to_csv(sheet_dir / "val_labels.csv", index=False)
    with pytest.raises(InputError) as info:
        load_sample_sheet(apply_sheet_config(sheet_dir))
    err = info.value
    assert err.path.endswith("val_labels.csv") and (err.row, err.column) == (4, labels.columns[3])
    (sheet_dir / "val_labels.csv").unlink()  # the train labels alone: a partly labelled batch
    sheet = load_sample_sheet(apply_sheet_config(sheet_dir))
    n_train = len(pd.read_csv(sheet_dir / "train_labels.csv"))
    assert int(sheet["labelled"].sum()) == n_train and len(sheet.attrs["labels"]) == 9
    assert [len(v) for v in sheet.attrs["findings"].values()] == [len(sheet) - n_train]


def test_training_sheet_without_label_files_names_what_to_add(sheet_dir):
    for path in sheet_dir.glob("*_labels.csv"):
        path.unlink()
    with pytest.raises(InputError) as info:
        load_sample_sheet(sheet_config(sheet_dir))
    err = info.value
    assert err.path == str(sheet_dir / "train_labels.csv")
    assert "no label file found" in err.problem and "val_labels.csv" in err.problem
    assert "add train_labels.csv" in err.fix and "trained_results" in err.fix
    with pytest.raises(InputError, match="add mine.csv to data.dir"):
        load_sample_sheet(sheet_config(sheet_dir, labels_files=["mine.csv"]))


def test_training_sheet_with_an_empty_label_list_is_a_config_error(sheet_dir):
    with pytest.raises(ConfigError, match=r"config key 'data/labels_files': \[\]") as info:
        load_sample_sheet(sheet_config(sheet_dir, labels_files=[]))
    assert "train_labels.csv" in str(info.value) and "trained_results" in str(info.value)
    with pytest.raises(ConfigError, match="data/labels_files"):  # told it is a training run
        load_sample_sheet(apply_sheet_config(sheet_dir, labels_files=[]), labels_required=True)


# --- Snakemake: the ingest_shard + qc_summary rules ----------------------------------------
def run_ingest_rules(workdir: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    config = derived_config({"data": {"layout": "mars2", "dir": str(data_dir)},
                             "workflow": {"shards": 2},
                             "representations": {"r": {"n_mass": 16, "n_x": 4}}, "models": {},
                             "baselines": [], "tabular": {}})
    write_config(workdir / "config.yaml", config)
    return run_snakemake(workdir, "results/qc/qc_summary.md", check=False,
                         extra=("--allowed-rules", "ingest_shard", "qc_summary"))


@pytest.mark.slow
def test_ingest_rules_run_and_a_fatal_file_stops_the_run(tiny_mars2, tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    proc = run_ingest_rules(good, tiny_mars2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = pd.read_csv(tiny_mars2 / "metadata.csv", dtype=str)
    qc = pd.read_parquet(good / "results/qc/qc.parquet")
    assert sorted(qc["sample_id"]) == sorted(meta["sample_id"])
    assert qc["md5_ok"].all() and (qc["dropped_mass"] > 0).all()  # helium in every run
    text = (good / "results/qc/qc_summary.md").read_text()
    assert f"{len(meta)} runs ingested" in text and f"{len(meta)} of {len(meta)} runs matched" in text
    runs = sorted((good / "results/runs").glob("shard*/*.parquet"))
    assert len(runs) == len(meta)

    data = tmp_path / "data"
    shutil.copytree(tiny_mars2, data)
    victim = data / meta["features_path"].iloc[0]
    lines = victim.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",oops"
    victim.write_text("\n".join(lines) + "\n")
    meta.loc[0, "features_md5_hash"] = hashlib.md5(victim.read_bytes()).hexdigest()
    meta.to_csv(data / "metadata.csv", index=False)  # so that parsing, not md5, stops it
    bad = tmp_path / "bad"
    bad.mkdir()
    proc = run_ingest_rules(bad, data)
    assert proc.returncode != 0
    logs = "".join(p.read_text() for p in (bad / "results/logs/ingest").glob("shard*.log"))
    expected = f"{victim}, row 4, column 'intensity': non-numeric value 'oops'"
    assert expected in logs, logs[-3000:]
    assert "Fix: " in logs
    assert not (bad / "results/qc/qc_summary.md").exists()


# --- real data (../shared/data) ------------------------------------------------------------
needs_mars1 = pytest.mark.skipif(not (MARS1 / "metadata.csv").exists(),
                                 reason="../shared/data/mars1-subset not present")
needs_mars2 = pytest.mark.skipif(not (MARS2 / "metadata.csv").exists(),
                                 reason="../shared/data/mars2-labels not present")


@needs_mars1
def test_real_mars1_runs_ingest_with_md5_and_clipped_negatives(tmp_path):
    meta = pd.read_csv(MARS1 / "metadata.csv", dtype=str)
    # S0110: 5,277 negative abundances; S0009: none; S0758 (sam_testbed): fractional m/z
    picks = meta[meta["sample_id"].isin(["S0009", "S0110", "S0758"])]
    assert len(picks) == 3
    records = [{"sample_id": r.sample_id, "features_path": str(MARS1 / r.features_path),
                "md5": r.features_md5_hash} for r in picks.itertuples()]
    qc = ingest_shard(records, tmp_path / "runs", tmp_path / "qc.parquet", MARS1_COLUMNS)
    assert qc["md5_ok"].all()
    counts = qc.set_index("sample_id")
    assert counts.loc["S0110", "negative_intensity"] > 1000  # background-subtracted noise
    assert counts.loc["S0758", "fractional_mass"] > 1000
    assert counts.loc["S0009", "dropped_mass"] > 0  # helium rows (m/z 4.0) removed
    for rec, row in zip(records, qc.itertuples()):
        raw = pd.read_csv(rec["features_path"])
        cached = pd.read_parquet(tmp_path / "runs" / f"{rec['sample_id']}.parquet")
        assert list(cached.columns) == ["time", "mass", "intensity", "temp"]
        assert [str(t) for t in cached.dtypes] == ["float32", "int16", "float32", "float32"]
        assert row.negative_intensity == int((raw["abundance"] < 0).sum())
        assert row.fractional_mass == int((raw["m/z"] != raw["m/z"].round()).sum())
        assert cached["intensity"].min() >= 0
        assert np.all(np.diff(cached["time"].to_numpy()) >= 0)
        assert 4 not in set(cached["mass"])
        assert row.n_rows_raw == len(raw)
        assert row.n_rows == len(raw) - row.dropped_mass - row.above_max_mass
        assert row.n_rows == len(cached)
    assert pq.read_schema(tmp_path / "qc.parquet").names == QC_SCHEMA.names


@needs_mars1
def test_real_mars1_sheet_loads_with_instrument_type():
    cfg = validate_config({"data": {"layout": "mars1", "dir": str(MARS1),
                                    "submission_format": None},
                           "workflow": {"shards": 4}, "models": {}})
    sheet = load_sample_sheet(cfg)
    assert len(sheet) == 129 and sheet["labelled"].all()
    assert set(sheet["instrument_type"]) == {"commercial", "sam_testbed"}
    assert sheet["md5"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert len(sheet.attrs["labels"]) == 10


@needs_mars2
def test_real_mars2_tables_load_as_a_sample_sheet():
    sheet = load_sample_sheet(sheet_config(MARS2))  # run files are absent; not read here
    assert len(sheet) == 1584
    assert sheet["split"].value_counts().to_dict() == {"train": 809, "test": 463, "val": 312}
    raw = pd.read_csv(MARS2 / "metadata.csv", dtype=str)
    assert set(raw["derivatized"].dropna()) == {"1"}  # the quirk: 1 or empty
    assert sheet["derivatized"].tolist() == raw["derivatized"].notna().astype(int).tolist()
    assert sheet["labelled"].sum() == 809
    assert (sheet.loc[sheet["labelled"], "split"] == "train").all()
    assert sheet.attrs["labels"][0] == "aromatic" and len(sheet.attrs["labels"]) == 9
    assert sheet.attrs["findings"] == {}  # val is wholly unlabelled: predicted, no finding
    submission = pd.read_csv(MARS2 / "submission_format.csv", dtype={"sample_id": str})
    unlabelled = sheet.loc[~sheet["labelled"], "sample_id"].tolist()
    assert submission["sample_id"].tolist() == unlabelled
    assert list(submission.columns[1:]) == sheet.attrs["labels"]
