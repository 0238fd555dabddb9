"""Code versions from import closures (spectrovision.provenance.code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spectrovision.provenance import code

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"


def test_closure_follows_imports_inside_functions_and_parent_packages():
    closure = code.import_closure(["spectrovision.learn.predict"])
    # predict imports the lease and io inside run_predict, models through train
    for module in ("spectrovision", "spectrovision.learn", "spectrovision.learn.lease",
                   "spectrovision.io", "spectrovision.learn.models", "spectrovision.errors"):
        assert module in closure
    # lazy subpackage __init__s import nothing: siblings stay out
    assert "spectrovision.ensemble.combine" not in closure
    assert "spectrovision.synth.demo" not in closure


def test_every_workflow_script_imports_library_modules_that_exist():
    for script in sorted(SCRIPTS.glob("*.py")):
        modules = code.script_imports(script)
        assert modules, f"{script.name} imports no library module"
        assert all(code.module_path(m) is not None for m in modules)
        assert code.script_code_version(script).startswith("0.")


def test_editing_a_module_changes_exactly_the_versions_whose_closure_holds_it(package_copy):
    train = SCRIPTS / "train.py"
    folds = SCRIPTS / "make_folds.py"
    before = {s: code.script_code_version(s) for s in (train, folds)}
    losses = package_copy / "learn" / "losses.py"
    losses.write_text(losses.read_text() + "\n# edited\n")
    code.direct_imports.cache_clear()
    after = {s: code.script_code_version(s) for s in (train, folds)}
    assert after[train] != before[train]  # train reaches losses through learn.train
    assert after[folds] == before[folds]  # folds does not


def test_an_unknown_module_is_an_error():
    with pytest.raises(FileNotFoundError, match="no module 'spectrovision.nope'"):
        code.code_version("nope")
