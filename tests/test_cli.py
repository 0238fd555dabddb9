"""The command line: --version, demo-data (and its overwrite guard), the subcommand table."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from spectrovision import __version__
from spectrovision.cli import SUBCOMMANDS, Subcommand, build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"spectrovision {__version__}"


def test_demo_data_writes_the_requested_runs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo-data", "--out", str(out), "--n-runs", "5", "--seed", "3"]) == 0
    meta = pd.read_csv(out / "metadata.csv")
    assert len(meta) == 5
    assert all((out / p).is_file() for p in meta["features_path"])
    assert str(out) in capsys.readouterr().out


def test_demo_data_without_n_runs_writes_the_embedded_demo_size(tmp_path, monkeypatch, capsys):
    """make demo runs `demo-data` without --n-runs: it must get DEMO_N_RUNS (300, the size
    at which the CNNs' margins over the yardstick exceed their seed spread), and say so."""
    import spectrovision.synth.demo as demo

    asked = {}

    def fake_generate(out, **kwargs):
        asked.update(kwargs)
        return out

    monkeypatch.setattr(demo, "generate_demo_dataset", fake_generate)
    assert main(["demo-data", "--out", str(tmp_path / "demo")]) == 0
    assert asked["n_runs"] == demo.DEMO_N_RUNS == 300
    assert "wrote 300 demo GC-MS runs" in capsys.readouterr().out


def test_demo_data_refuses_a_non_empty_folder_without_force(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo-data", "--out", str(tmp_path), "--n-runs", "3"]) == 2
    assert "--force" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_force_replaces_the_data_set_and_keeps_other_files(tmp_path):
    assert main(["demo-data", "--out", str(tmp_path), "--n-runs", "8"]) == 0
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo-data", "--out", str(tmp_path), "--n-runs", "4", "--force"]) == 0
    runs = sorted(p.name for p in tmp_path.glob("*_features/*.csv"))
    assert runs == [f"S{i:04d}.csv" for i in range(4)]  # no stale runs of the first set
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_demo_data_rejects_zero_runs(tmp_path, capsys):
    assert main(["demo-data", "--out", str(tmp_path / "x"), "--n-runs", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_config_doc_writes_the_schema_markdown(tmp_path):
    from spectrovision.config.doc import schema_markdown

    out = tmp_path / "README.md"
    assert main(["config-doc", "--out", str(out)]) == 0
    assert out.read_text() == schema_markdown()


def test_a_row_in_the_subcommand_table_becomes_a_command():
    seen: list[str] = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name", required=True)

    def run(args: argparse.Namespace) -> int:
        seen.append(args.name)
        return 0

    parser = build_parser([*SUBCOMMANDS, Subcommand("hello", "say hello", add_arguments, run)])
    args = parser.parse_args(["hello", "--name", "mars"])
    assert args.run(args) == 0 and seen == ["mars"]
    assert "demo-data" in parser.format_help()
