"""Each subpackage names its public API lazily: every name resolves, importing the package
loads none of its modules, and no import cycle exists between modules."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from spectrovision.provenance import code

SUBPACKAGES = ["config", "data", "render", "learn", "ensemble", "analysis", "report",
               "provenance", "synth"]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_exported_name_resolves(name):
    package = importlib.import_module(f"spectrovision.{name}")
    assert package.__all__
    for exported in package.__all__:
        assert getattr(package, exported) is not None
    with pytest.raises(AttributeError):
        getattr(package, "no_such_name")


def test_importing_a_subpackage_loads_none_of_its_modules():
    script = ("import sys\n" + "".join(f"import spectrovision.{n}\n" for n in SUBPACKAGES)
              + "loaded = [m for m in sys.modules if m.startswith('spectrovision.')]\n"
              "print(sorted(loaded))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    loaded = eval(out)  # noqa: S307 - our own printed list
    assert set(loaded) <= {f"spectrovision.{n}" for n in SUBPACKAGES} | {"spectrovision._exports"}


def test_no_import_cycle_between_library_modules():
    files = [p.relative_to(code.PACKAGE_DIR) for p in code.PACKAGE_DIR.rglob("*.py")]
    modules = [f"spectrovision.{'.'.join(f.with_suffix('').parts)}" for f in files
               if f.name != "__init__.py"]
    graph = {m: {d for d in code.direct_imports(m) if not code.module_path(d).name
                 == "__init__.py"} for m in modules}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


# The data flow, upstream first: a module may import its own package and those before it.
# synth (the demo generators) comes last: no runtime package imports it.
DATA_FLOW = {"config": 0, "data": 1, "render": 2, "learn": 3, "ensemble": 4, "analysis": 5,
             "apply": 5, "report": 5, "synth": 6}


def test_dependencies_point_down_the_data_flow():
    """config <- data <- render <- learn <- ensemble <- analysis/apply/report <- synth: no module
    imports (at the top or inside a function) from a package later in the flow, e.g.
    config/checks.py gets the ensemble's row names passed in instead of importing them."""
    upward = []
    for path in code.PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(code.PACKAGE_DIR).with_suffix("").parts
        if len(parts) < 2 or parts[0] not in DATA_FLOW or parts[-1] == "__init__":
            continue
        module = "spectrovision." + ".".join(parts)
        for dep in code.direct_imports(module):
            package = dep.split(".")[1] if dep.count(".") else ""
            if DATA_FLOW.get(package, -1) > DATA_FLOW[parts[0]]:
                upward.append(f"{module} -> {dep}")
    assert not upward, upward


def test_a_plain_install_finds_its_schema_and_data(tmp_path):
    """`pip install .` without -e: the schema and the EI spectra ship inside the package."""
    repo = code.PACKAGE_DIR.parents[1]
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "wheel"), str(repo)], check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("spectrovision-*.whl"))
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    script = ("import spectrovision\nfrom spectrovision.config.schema import load_schema\n"
              "from spectrovision.synth.demo import load_spectra_library\n"
              "print(spectrovision.__file__, 'workflow' in load_schema()['properties'], "
              "len(load_spectra_library().spectra) > 100)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, env={"PATH": os.environ.get("PATH", ""),
                                            "PYTHONPATH": str(site)}, check=True).stdout
    assert out.split() == [str(site / "spectrovision" / "__init__.py"), "True", "True"]
