"""Lineage: follow provenance sidecars backwards from an artefact to the raw files.

``build_lineage("results/submission.csv")`` returns a graph: every artefact reached
through inputs that carry their own ``*.provenance.json`` (submission -> ensemble ->
members -> predictions -> models -> renders -> runs), with raw files as hashed leaves.
Shared artefacts (folds.csv, a render stack) appear once in ``nodes`` and are referred to
by path, so the record stays small however many models and folds read them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .records import SUFFIX, iter_input_paths, provenance_path, read_provenance

# Params worth showing when printing a lineage (all params stay in the record).
KEY_PARAMS = ("model", "backbone", "head", "fold", "representation", "rep", "lr", "epochs",
              "selection", "selected", "members", "tta_n_widths", "tta_step", "n_mass", "n_x")
MAX_LIST = 20  # longer params lists are summarised in the lineage (the sidecar keeps them)


def find_sidecar(path: Path) -> Path | None:
    """The sidecar describing ``path``: beside it, or a sidecar in the same folder that
    lists it among its job's ``outputs`` (for a job's secondary outputs)."""
    direct = provenance_path(path)
    if direct.is_file():
        return direct
    folder = path.parent
    if not folder.is_dir():
        return None
    for candidate in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            outputs = read_provenance(candidate).get("outputs", [])
        except ValueError:
            continue
        if any(Path(o).name == path.name for o in outputs):
            return candidate
    return None


def summarise(value: Any) -> Any:
    """Shrink bulky params (long lists become a count) for the lineage record."""
    if isinstance(value, list) and len(value) > MAX_LIST:
        return f"[{len(value)} items]"
    if isinstance(value, dict):
        return {k: summarise(v) for k, v in value.items()}
    return value


def input_entries(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A record's inputs as a flat list of entries (path, sha256, ...)."""
    inputs = record.get("inputs", [])
    entries: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict) and "path" in value:
            entries.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(inputs)
    return entries


def node_from_record(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "artefact",
        "sha256": record.get("output_sha256"),
        "rule": record.get("rule"),
        "wildcards": record.get("wildcards", {}),
        "params": summarise(record.get("params", {})),
        "code_version": record.get("code_version"),
        "started": record.get("started"),
        "finished": record.get("finished"),
        "inputs": [],
    }


def resolve(path: str, base: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else base / p


def build_lineage(path: str | os.PathLike[str], base: str | os.PathLike[str] | None = None
                  ) -> dict[str, Any]:
    """The lineage graph of an artefact (give the artefact or its sidecar).

    Returns ``{"root": path, "nodes": {path: node}}``; a node is an artefact with its rule,
    wildcards, params, code version, output sha256 and ``inputs`` (paths of other nodes),
    or a ``"file"`` leaf (an input without provenance, e.g. a raw run) with its sha256.
    An input whose hash no longer matches what its upstream sidecar recorded is marked
    ``"stale": true`` on the consuming node's input list. Relative paths in sidecars
    resolve against ``base`` (default: the current folder, i.e. the workflow's).
    """
    root = str(path).removesuffix(SUFFIX)
    base_dir = Path(base) if base is not None else Path.cwd()
    nodes: dict[str, dict[str, Any]] = {}
    pending = [root]
    while pending:
        current = pending.pop()
        if current in nodes:
            continue
        sidecar = find_sidecar(resolve(current, base_dir))
        if sidecar is None:
            nodes[current] = {"kind": "file", "inputs": []}
            continue
        record = read_provenance(sidecar)
        node = node_from_record(record)
        if sidecar != provenance_path(resolve(current, base_dir)):
            node["sha256"] = None  # a secondary output: its own hash is on the input list
        nodes[current] = node
        for entry in input_entries(record):
            child = str(entry["path"])
            node["inputs"].append({"path": child, "sha256": entry.get("sha256")})
            pending.append(child)
    mark_file_hashes(nodes)
    mark_stale_inputs(nodes)
    return {"root": root, "nodes": nodes}


def mark_file_hashes(nodes: dict[str, dict[str, Any]]) -> None:
    """Give leaves and secondary outputs (no hash of their own in a sidecar) the hash their
    consumer recorded."""
    for node in nodes.values():
        for entry in node["inputs"]:
            upstream = nodes[entry["path"]]
            if upstream.get("sha256") is None:
                upstream["sha256"] = entry["sha256"]


def mark_stale_inputs(nodes: dict[str, dict[str, Any]]) -> None:
    """Flag inputs whose recorded hash differs from what their producer recorded."""
    for node in nodes.values():
        for entry in node["inputs"]:
            upstream = nodes[entry["path"]]
            produced = upstream.get("sha256")
            if upstream["kind"] == "artefact" and produced and entry["sha256"] != produced:
                entry["stale"] = True


def build_inputs_lineage(inputs: Any, base: str | os.PathLike[str] | None = None
                         ) -> dict[str, Any]:
    """The lineage of a job's inputs (list or name -> paths), merged into one graph with
    ``roots`` = the input paths: what a submission embeds in its own sidecar."""
    roots = list(dict.fromkeys(iter_input_paths(normalise_inputs(inputs))))
    nodes: dict[str, dict[str, Any]] = {}
    for root in roots:
        nodes.update(build_lineage(root, base)["nodes"])
    return {"roots": roots, "nodes": nodes}


def normalise_inputs(inputs: Any) -> Any:
    """Plain path lists/mappings -> the entry shape of a provenance record."""
    if isinstance(inputs, dict):
        return {k: normalise_inputs(v) for k, v in inputs.items()}
    if isinstance(inputs, (str, os.PathLike)):
        return [{"path": str(inputs)}]
    return [{"path": str(v)} for v in inputs]


def short(sha: str | None) -> str:
    return sha[:10] if sha else "-"


def key_params(node: dict[str, Any]) -> str:
    """The params that tell artefacts apart: model, fold, representation, members, ..."""
    shown = {**node.get("wildcards", {})}
    params = node.get("params", {})
    for name in KEY_PARAMS:
        if name in params and name not in shown:
            shown[name] = params[name]
    model = params.get("model")
    if isinstance(model, dict):  # a resolved model's settings
        for name in ("backbone", "head", "representation", "lr", "epochs"):
            if name in model:
                shown.setdefault(name, model[name])
    return " ".join(f"{k}={v}" for k, v in shown.items())


def format_lineage(lineage: dict[str, Any]) -> str:
    """An indented tree: one line per artefact (short hash, rule, key params); an artefact
    reached again is printed once and then referred to with ``(see above)``."""
    nodes = lineage["nodes"]
    roots = lineage.get("roots") or [lineage["root"]]
    lines: list[str] = []
    seen: set[str] = set()

    def visit(path: str, depth: int, stale: bool) -> None:
        node = nodes[path]
        pad = "  " * depth
        flag = "  [STALE: changed since it was used]" if stale else ""
        if path in seen and node["inputs"]:
            lines.append(f"{pad}{path}  (see above){flag}")
            return
        seen.add(path)
        if node["kind"] == "file":
            lines.append(f"{pad}{path}  sha256:{short(node.get('sha256'))}{flag}")
            return
        detail = " ".join(p for p in (f"rule={node['rule']}" if node.get("rule") else "",
                                      key_params(node),
                                      f"code={node['code_version']}" if node.get(
                                          "code_version") else "") if p)
        lines.append(f"{pad}{path}  sha256:{short(node.get('sha256'))}  {detail}{flag}")
        for entry in node["inputs"]:
            visit(entry["path"], depth + 1, bool(entry.get("stale")))

    for root in roots:
        visit(root, 0, False)
    return "\n".join(lines)


def add_lineage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artefact", type=Path,
                        help="an artefact with a provenance sidecar, e.g. results/submission.csv")
    parser.add_argument("--json", action="store_true", help="print the lineage graph as JSON")
    parser.add_argument("--base", type=Path, default=None,
                        help="folder that relative paths in sidecars start from "
                             "(default: the current folder, i.e. the workflow folder)")


def run_lineage(args: argparse.Namespace) -> int:
    import json

    base = args.base if args.base is not None else Path.cwd()
    if find_sidecar(resolve(str(args.artefact).removesuffix(SUFFIX), base)) is None:
        print(f"error: {args.artefact} has no provenance sidecar "
              f"({provenance_path(args.artefact)}); build it with snakemake first, or run "
              "this command from the workflow folder", file=sys.stderr)
        return 2
    lineage = build_lineage(args.artefact, base)
    print(json.dumps(lineage, indent=2) if args.json else format_lineage(lineage))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spectrovision lineage",
                                     description="show what an artefact was made from")
    add_lineage_arguments(parser)
    return run_lineage(parser.parse_args(argv))
