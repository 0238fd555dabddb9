"""The workflow passes `snakemake --lint` and `snakefmt --check` with no finding."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from support import snakemake_env

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def test_snakefmt_check_is_clean():
    files = [str(REPO / "Snakefile"), str(REPO / "workflow")]
    proc = subprocess.run([_tool("snakefmt"), "--check", *files], capture_output=True, text=True)
    assert proc.returncode == 0, f"snakefmt would reformat:\n{proc.stdout}\n{proc.stderr}"


def test_snakemake_lint_is_clean(tiny_config, tmp_path):
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config))
    proc = subprocess.run(
        [_tool("snakemake"), "-s", str(REPO / "Snakefile"), "--configfile", str(cfg_path),
         "--directory", str(tmp_path), "--lint"],
        capture_output=True, text=True, env=snakemake_env(),
    )
    out = proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in out, out
    assert proc.returncode == 0, out
