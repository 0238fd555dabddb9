"""Code versions derived from imports: a rule's code version covers every library module
its script can reach.

The import closure is read statically (``ast``), never by importing: every ``import`` and
``from ... import`` of this package anywhere in a module (functions included) counts, and
importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``. Subpackage
``__init__`` files name their public API lazily (no imports at module level), so the
closure of one module stays that module's real dependencies.

The same closure names the third-party packages a workflow script needs
(:func:`script_third_party_imports`): the top-level modules outside the standard library
that the script or any module of its closure imports, so each rule's conda environment can
be checked against it.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

PACKAGE = "spectrovision"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def module_path(module: str) -> Path | None:
    """The file of a dotted module of the package (``spectrovision.learn.train``), or None."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    file = base.with_suffix(".py")
    return file if file.is_file() else None


def _is_package(module: str) -> bool:
    path = module_path(module)
    return path is not None and path.name == "__init__.py"


def _with_parents(module: str) -> list[str]:
    """``a.b.c`` -> [a, a.b, a.b.c]: importing a module runs every parent ``__init__``."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _resolve_from(node: ast.ImportFrom, module: str) -> list[str]:
    """The package modules one ``from X import a, b`` statement in ``module`` loads."""
    if node.level:
        package = module if _is_package(module) else module.rpartition(".")[0]
        anchor = package.split(".")
        if node.level > 1:
            anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base.split(".")[0] != PACKAGE:
        return []
    found = [base]
    for alias in node.names:  # `from pkg import submodule` loads the submodule too
        candidate = f"{base}.{alias.name}"
        if module_path(candidate) is not None:
            found.append(candidate)
    return found


@lru_cache(maxsize=None)
def direct_imports(module: str) -> frozenset[str]:
    """Package modules that ``module`` imports anywhere in its body (parents included)."""
    path = module_path(module)
    if path is None:
        raise FileNotFoundError(f"code version: no module '{module}' under {PACKAGE_DIR}")
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom):
            targets = _resolve_from(node, module)
        else:
            continue
        for target in targets:
            found.update(m for m in _with_parents(target) if module_path(m) is not None)
    found.discard(module)
    return frozenset(found)


def import_closure(modules: list[str] | tuple[str, ...]) -> list[str]:
    """Every package module reachable from ``modules`` (themselves and parents included)."""
    for module in modules:
        if module_path(module) is None:
            raise FileNotFoundError(f"code version: no module '{module}' under {PACKAGE_DIR}")
    seen: set[str] = set()
    todo = [m for module in modules for m in _with_parents(module)]
    while todo:
        module = todo.pop()
        if module in seen or module_path(module) is None:
            continue
        seen.add(module)
        todo.extend(direct_imports(module))
    return sorted(seen)


def script_imports(script: str | os.PathLike[str]) -> list[str]:
    """Package modules a workflow script imports directly."""
    text = Path(script).read_text()
    found: set[str] = set()
    for node in ast.walk(ast.parse(text, filename=str(script))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.update(_resolve_from(node, "__script__"))
    return sorted(m for m in found if module_path(m) is not None)


def modules_version(modules: list[str] | tuple[str, ...]) -> str:
    """Hash of the given modules' files (relative path + bytes) and the package version."""
    from .. import __version__

    h = hashlib.sha256(__version__.encode())
    for module in sorted(modules):
        path = module_path(module)
        assert path is not None
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(path.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def code_version(*modules: str) -> str:
    """Code version of library modules and everything they import (names relative to the
    package, e.g. ``"learn.train"``). A Snakemake param: editing any module in the
    closure re-runs the rule, editing any other module does not."""
    return modules_version(import_closure([f"{PACKAGE}.{m}" for m in modules]))


def script_code_version(script: str | os.PathLike[str]) -> str:
    """Code version of a workflow script's library code: the import closure of the
    package modules it imports (the script itself is tracked by Snakemake)."""
    return modules_version(import_closure(script_imports(script)))


# --- third-party imports: what a rule's environment must install ----------------------------
def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (an ``if`` only type checkers enter)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` that can run (function bodies included), leaving out the
    bodies of ``if TYPE_CHECKING:`` (their ``else`` runs)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def external_imports(path: str | os.PathLike[str]) -> frozenset[str]:
    """Top-level names of the modules a Python file imports anywhere at run time (lazy
    imports inside functions included, ``if TYPE_CHECKING:`` blocks not) that are neither
    in the standard library nor this package (relative imports are the package's)."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return frozenset(name for name in found
                     if name != PACKAGE and name not in sys.stdlib_module_names)


def script_third_party_imports(script: str | os.PathLike[str],
                               modules: tuple[str, ...] = ()) -> list[str]:
    """Third-party top-level modules a workflow script can import when it runs: its own
    and those of every package module in its import closure (:func:`import_closure`),
    plus the closure of ``modules`` (names relative to the package, e.g. the modules a
    layout imports by name for a stage), sorted. Import names, not distribution names
    (``sklearn``, not ``scikit-learn``)."""
    found = set(external_imports(script))
    roots = script_imports(script) + [f"{PACKAGE}.{m}" for m in modules]
    for module in import_closure(roots):
        path = module_path(module)
        assert path is not None
        found |= external_imports(path)
    return sorted(found)
