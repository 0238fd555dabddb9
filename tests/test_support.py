"""The shared test helpers (tests/support.py): derived configs, dry-run parsing, and a
failing Snakemake run that reports its output and the failed job's log."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from spectrovision.config.schema import validate_config
from support import (SHIPPED_CONFIG, STUB_BIN, derived_config, dry_run_jobs, parse_dry_run,
                     run_snakemake, snakemake_env, tiny_workflow_config)


def test_derived_config_merges_mappings_and_replaces_collections():
    shipped = yaml.safe_load(SHIPPED_CONFIG.read_text())
    config = derived_config({"folds": {"n_folds": 2}, "baselines": ["prior"],
                             "models": {"m": {"representation": "r"}},
                             "representations": {"r": {"n_mass": 4, "n_x": 4}},
                             "tabular": {}, "data": {"submission_format": None}})
    assert config["folds"] == {**shipped["folds"], "n_folds": 2}
    assert config["data"] == {**shipped["data"], "submission_format": None}
    assert config["baselines"] == ["prior"] and config["tabular"] == {}
    assert config["models"] == {"m": {"representation": "r"}}
    assert list(config["representations"]) == ["r"]
    assert config["qc"] == shipped["qc"]
    assert yaml.safe_load(SHIPPED_CONFIG.read_text()) == shipped  # the file is untouched
    # the shipped explain model is not among the new models: the first by name instead
    assert shipped["explain"]["model"] not in config["models"]
    assert config["explain"]["model"] is None
    kept = derived_config({"models": {shipped["explain"]["model"]: {"representation": "r"}}})
    assert kept["explain"]["model"] == shipped["explain"]["model"]


def test_tiny_workflow_config_validates(tmp_path):
    config = validate_config(tiny_workflow_config(tmp_path / "data", tmp_path / "results"))
    assert sorted(config["models"]) == ["tiny_pool", "tiny_timeavg"]
    assert config["tabular"] == {} and config["model_defaults"]["epochs"] == 1


def test_parse_dry_run_reads_local_rules_and_wildcards():
    text = ("rule render_shard:\n    wildcards: rep=b, shard=1\n\nlocalrule all:\n"
            "    input: x\n")
    assert parse_dry_run(text) == [("render_shard", {"rep": "b", "shard": "1"}), ("all", {})]


SNAKEFILE = """
rule all:
    input: "done.txt"

rule fail:
    output: "done.txt"
    log: "logs/fail.log"
    shell: "echo 'the reason it failed' > {log}; exit 3"
"""


def test_a_failing_run_reports_the_log_of_the_failed_job(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "config.yaml").write_text("{}\n")
    assert dry_run_jobs(tmp_path, snakefile=tmp_path / "Snakefile", cores=1) == {
        "all": 1, "fail": 1}
    with pytest.raises(AssertionError) as info:
        run_snakemake(tmp_path, snakefile=tmp_path / "Snakefile", cores=1)
    message = str(info.value)
    assert "snakemake exited with 1" in message and "Error in rule fail" in message
    assert "logs/fail.log (tail)" in message and "the reason it failed" in message
    proc = run_snakemake(tmp_path, snakefile=tmp_path / "Snakefile", cores=1, check=False)
    assert proc.returncode != 0


def test_snakemake_runs_find_the_scontrol_stand_in_unless_they_use_slurm():
    """Snakemake's SLURM plugin asks scontrol at every start; a run that does not use SLURM
    gets the stand-in, which answers at once and fails (as on a machine without SLURM)."""
    plain = shutil.which("scontrol", path=snakemake_env()["PATH"])
    assert plain == str(STUB_BIN / "scontrol")
    proc = subprocess.run(["scontrol", "show", "config"], env=snakemake_env(),
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "stand-in" in proc.stderr
    real = shutil.which("scontrol", path=snakemake_env(slurm=True)["PATH"])
    assert real != plain  # the SLURM test's runs see the real tool (or none)
