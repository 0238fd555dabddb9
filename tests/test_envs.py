"""Conda environments that work (``snakemake --sdm conda``): each rule's ``conda:``
environment lists every third-party package its script can import through the library, at
the version of requirements.lock, and installs spectrovision itself.

The packages a rule needs are derived, not listed by hand: the import closure of its
script (``provenance.code.script_third_party_imports``, lazy imports inside functions
included), mapped from import names to distributions by the installed packages' metadata.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from spectrovision.provenance import code

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "workflow" / "rules"
LOCK = REPO / "requirements.lock"
# Packages used without being imported by name: pandas reads and writes Parquet through
# pyarrow, an optional dependency of pandas that pandas imports itself.
IMPLIED = {"pyarrow": ("pandas",)}
# conda-forge names that differ from the PyPI distribution (normalised) of the same package
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_PINNED = {"python", "pip"}  # the interpreter and installer, not in requirements.lock
RULE = re.compile(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", re.M)
DIRECTIVE = r"^[ \t]+{}:\s*\n[ \t]+\"([^\"]+)\""
# a layout stage's job (code=layout_code(script, stage)) also runs the modules that every
# registered layout names for that stage, imported by name (data.layouts.Layout.modules)
LAYOUT_STAGE = re.compile(r"layout_code\(\s*\"\w+\",\s*\"(\w+)\"\s*\)")


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares it (``PyYAML`` -> ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def rule_environments() -> dict[str, tuple[Path, Path, str | None]]:
    """rule -> (its script, its conda environment file, its layout stage or None), from
    the ``script:`` and ``conda:`` directives of workflow/rules/*.smk (paths relative to
    the .smk file) and a ``layout_code(script, stage)`` param."""
    found: dict[str, tuple[Path, Path, str | None]] = {}
    for smk in sorted(RULES.glob("*.smk")):
        text = smk.read_text()
        blocks = RULE.findall(text)
        assert len(blocks) == len(re.findall(r"^rule \w+:", text, re.M)), smk
        n_scripts = 0
        for name, body in blocks:
            script = re.search(DIRECTIVE.format("script"), body, re.M)
            conda = re.search(DIRECTIVE.format("conda"), body, re.M)
            if script is None:
                continue
            n_scripts += 1
            assert conda is not None, f"{smk.name}: rule {name} runs a script but has no conda:"
            stage = LAYOUT_STAGE.search(body)
            found[name] = ((smk.parent / script.group(1)).resolve(),
                           (smk.parent / conda.group(1)).resolve(),
                           stage.group(1) if stage else None)
        assert n_scripts == len(re.findall(r"^[ \t]+script:", text, re.M)), smk
    return found


@functools.cache
def installed_providers() -> Mapping[str, list[str]]:
    """Top-level import name -> the installed distributions that provide it."""
    return importlib.metadata.packages_distributions()


def distribution(import_name: str) -> str:
    """The (normalised) distribution that provides a top-level import name."""
    providers = installed_providers().get(import_name, [])
    names = sorted({normalized(p) for p in providers})
    assert len(names) == 1, (f"import '{import_name}' is provided by {names or 'nothing'} "
                             "here: install it (and pin it in requirements.lock)")
    return names[0]


def layout_stage_modules(stage: str | None) -> tuple[str, ...]:
    """The modules every registered layout runs for ``stage`` (none for no stage)."""
    from spectrovision.data.layouts import LAYOUTS

    if stage is None:
        return ()
    return tuple(sorted({m for name in LAYOUTS for m in LAYOUTS.get(name).modules.get(stage, ())}))


def needed_distributions(script: Path, stage: str | None = None) -> set[str]:
    """The distributions a workflow script's import closure needs, with those of every
    layout's modules for ``stage`` (and IMPLIED ones)."""
    needed = {distribution(name) for name in
              code.script_third_party_imports(script, layout_stage_modules(stage))}
    needed |= {extra for extra, users in IMPLIED.items() if needed & set(users)}
    return needed


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """requirements.lock as normalised name -> version."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[normalized(name)] = version.strip()
    return pins


def env_pins(env: Mapping[str, object]) -> dict[str, str | None]:
    """An environment file's packages (conda and pip sections) as normalised PyPI name ->
    exact version (None when the spec allows more than one version)."""
    pins: dict[str, str | None] = {}
    for dep in env.get("dependencies") or []:
        pip = isinstance(dep, dict)
        for spec in dep["pip"] if pip else [dep]:
            if spec.startswith("-"):
                continue  # a pip option (an index, an editable path): no package
            name, rest = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", spec).groups()
            name = normalized(name) if pip else CONDA_TO_PYPI.get(normalized(name),
                                                                normalized(name))
            exact = re.fullmatch(r"==([\w.+!]+)" if pip else r"==?([\w.+!]+)", rest.strip())
            pins[name] = exact.group(1) if exact else None
    return pins


def env_problems(needed: set[str], env: Mapping[str, object], lock: Mapping[str, str]
                 ) -> list[str]:
    """What is wrong with an environment for a rule that needs ``needed``: a package
    missing, one not pinned, or pinned at another version than requirements.lock."""
    pins = env_pins(env)
    problems = [f"{name} is missing (requirements.lock: {lock.get(name, 'not pinned')})"
                for name in sorted(needed - set(pins))]
    for name, version in sorted(pins.items()):
        if name in NOT_PINNED:
            continue
        if name not in lock:
            problems.append(f"{name} is not in requirements.lock")
        elif version is None:
            problems.append(f"{name} is not pinned to one version "
                            f"(requirements.lock: {lock[name]})")
        elif version != lock[name]:
            problems.append(f"{name} is pinned at {version}, requirements.lock has {lock[name]}")
    return problems


def test_every_rule_environment_has_its_scripts_packages_at_the_locked_versions():
    rules = rule_environments()
    assert {"ingest_shard", "train", "explain", "embed", "apply_model"} <= set(rules)
    lock = read_lock()
    failures = []
    for rule, (script, env_file, stage) in sorted(rules.items()):
        assert script.is_file() and env_file.is_file(), (rule, script, env_file)
        env = yaml.safe_load(env_file.read_text())
        for problem in env_problems(needed_distributions(script, stage), env, lock):
            failures.append(f"rule {rule} ({env_file.relative_to(REPO)}): {problem}")
    assert not failures, "\n".join(failures)


def test_the_analysis_rules_need_umap_and_grad_cam_and_the_data_rules_no_torch():
    rules = rule_environments()
    assert {"grad-cam", "umap-learn", "torch", "timm", "pillow", "pyarrow"} <= \
        needed_distributions(rules["embed"][0])
    assert "grad-cam" in needed_distributions(rules["explain"][0])
    for rule in ("ingest_shard", "apply_member", "apply_ensemble", "tabular", "ensemble"):
        assert rules[rule][1].name == "core.yaml", rule
        assert "torch" not in needed_distributions(rules[rule][0]), rule
    # the ingest job of the instrument layout reads mzML with pyteomics (lxml), imported by
    # name through the layout registry, and the images layout decodes with Pillow
    ingest = rules["ingest_shard"]
    assert ingest[2] == "ingest"
    assert {"pyteomics", "lxml", "pillow", "scipy"} <= needed_distributions(ingest[0], ingest[2])


def test_import_names_map_to_their_distributions():
    assert {name: distribution(name) for name in
            ("sklearn", "yaml", "PIL", "pytorch_grad_cam", "umap", "torch")} == {
        "sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow",
        "pytorch_grad_cam": "grad-cam", "umap": "umap-learn", "torch": "torch"}


def test_a_missing_package_or_another_version_is_a_problem():
    lock = {"numpy": "2.4.6", "umap-learn": "0.5.12", "torch": "2.14.1"}
    env = {"dependencies": ["python=3.11", "numpy=2.4.5",
                            {"pip": ["torch==2.14.1", "--extra-index-url https://x"]}]}
    assert env_problems({"numpy", "torch", "umap-learn"}, env, lock) == [
        "umap-learn is missing (requirements.lock: 0.5.12)",
        "numpy is pinned at 2.4.5, requirements.lock has 2.4.6"]
    loose = {"dependencies": ["numpy>=2", "pytorch=2.14.1", "umap-learn=0.5.12"]}
    assert env_problems({"numpy", "torch", "umap-learn"}, loose, lock) == [
        "numpy is not pinned to one version (requirements.lock: 2.4.6)"]
    assert env_problems({"numpy"}, {"dependencies": ["numpy=2.4.6", "rich=1"]}, lock) == [
        "rich is not in requirements.lock"]


def test_the_closure_counts_lazy_imports_and_skips_type_checking_ones(package_copy, tmp_path):
    module = package_copy / "metrics.py"
    module.write_text(module.read_text() + (
        "\n\nif TYPE_CHECKING:\n    import onlytyped\nelse:\n    import atruntime\n\n\n"
        "def _lazy():\n    import lazily_imported.sub\n    from fromimport import x\n"
        "    from . import io\n    import json\n"))
    script = tmp_path / "script.py"
    script.write_text("import requests\nfrom spectrovision.metrics import clipped_probs\n")
    found = code.script_third_party_imports(script)
    assert {"atruntime", "lazily_imported", "fromimport", "requests", "numpy"} <= set(found)
    assert not {"onlytyped", "json", "spectrovision", "io"} & set(found)


@pytest.mark.parametrize("env_name", ["core", "torch"])
def test_each_environment_installs_spectrovision_from_the_checkout(env_name, tmp_path):
    """The post-deploy script beside each environment installs this checkout (editable,
    no dependencies) with the environment's python; run here with a stand-in python."""
    deploy = REPO / "envs" / f"{env_name}.post-deploy.sh"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\n')
    (fake / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
           "SPECTROVISION_ROOT": str(REPO)}
    subprocess.run(["bash", str(deploy)], env=env, check=True, cwd=tmp_path)
    assert (tmp_path / "args").read_text().split() == [
        "-m", "pip", "install", "--no-deps", "--editable", str(REPO)]
    del env["SPECTROVISION_ROOT"]
    proc = subprocess.run(["bash", str(deploy)], env=env, cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "SPECTROVISION_ROOT" in proc.stderr
    # the Snakefile, which every run parses first, exports the checkout's path
    assert "os.environ.update(SPECTROVISION_ROOT=str(workflow.basedir))" in \
        (REPO / "Snakefile").read_text()
