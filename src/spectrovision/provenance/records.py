"""Provenance: what an artefact was made from (hashes, params, code, packages, device, times)."""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = ("spectrovision", "numpy", "pandas", "pyarrow", "scikit-learn", "torch",
                    "torchvision", "timm", "snakemake")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=4)
def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


SUFFIX = ".provenance.json"


def provenance_path(output: str | os.PathLike[str]) -> Path:
    """The sidecar of an artefact: ``<output>.provenance.json`` beside it."""
    return Path(f"{output}{SUFFIX}")


def device_info() -> dict[str, Any]:
    """Platform, Python, CPU count and, when the job has imported torch, its CUDA device.

    torch is never imported here (a 1-2 s import would dominate light jobs); a job that
    trains or predicts has it loaded already.
    """
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_count": os.cpu_count(), "cuda_device": None}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(torch.cuda.current_device())
        info["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    return info


def now_iso(timestamp: float | None = None) -> str:
    """Local time as ISO 8601 with offset (now, or the given Unix time)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(timestamp))


def current_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


# --- hashing files and folders -------------------------------------------------------------
def tree_files(folder: Path) -> list[Path]:
    """Files under ``folder`` in sorted relative-path order, skipping hidden names
    (atomic-write temporaries, Snakemake's ``.snakemake_timestamp``)."""
    return sorted((f for f in folder.rglob("*") if f.is_file()
                   and not any(part.startswith(".") for part in f.relative_to(folder).parts)),
                  key=lambda f: f.relative_to(folder).as_posix())


def stat_signature(path: str | os.PathLike[str]) -> str:
    """Cheap identity of a file or folder tree: names, sizes and mtimes (no content read)."""
    p = Path(path)
    h = hashlib.sha256()
    for f in tree_files(p) if p.is_dir() else [p]:
        st = f.stat()
        h.update(f"{f.relative_to(p).as_posix() if p.is_dir() else ''}\0{st.st_size}\0"
                 f"{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def sha256_tree(folder: str | os.PathLike[str]) -> str:
    """Content hash of a folder: sha256 over sorted relative names and each file's sha256.

    Each file is read once; renaming, adding, removing or changing a file changes it.
    """
    root = Path(folder)
    h = hashlib.sha256()
    for f in tree_files(root):
        h.update(f"{f.relative_to(root).as_posix()}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def recorded_sha256(path: Path) -> str | None:
    """The content hash an upstream job recorded for ``path`` in its sidecar, if the
    artefact has not changed since (same names, sizes, mtimes): hash each artefact once."""
    try:
        record = read_provenance(path)
    except (FileNotFoundError, ValueError):
        return None
    if record.get("output_signature") == stat_signature(path):
        return record.get("output_sha256")
    return None


def content_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, or of a folder tree (see :func:`sha256_tree`), reusing the hash
    recorded in the artefact's own up-to-date sidecar when there is one."""
    p = Path(path)
    reused = recorded_sha256(p)
    if reused is not None:
        return reused
    return sha256_tree(p) if p.is_dir() else sha256_file(p)


def describe_input(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One input: path, kind, sha256 (files and folders), bytes or file count."""
    p = Path(path)
    entry: dict[str, Any] = {"path": str(path)}
    if p.is_file():
        entry.update(kind="file", sha256=content_sha256(p), bytes=p.stat().st_size)
    elif p.is_dir():
        entry.update(kind="folder", sha256=content_sha256(p), files=len(tree_files(p)))
    else:
        entry.update(kind="missing", sha256=None)
    return entry


def describe_inputs(inputs: Any) -> Any:
    """A list of paths -> list of entries; a mapping name -> path(s) -> name -> entries."""
    if isinstance(inputs, Mapping):
        return {str(k): describe_inputs(v) for k, v in inputs.items()}
    if isinstance(inputs, (str, os.PathLike)):
        return [describe_input(inputs)]
    return [describe_input(v) for v in inputs]


def iter_input_paths(inputs: Any) -> Iterator[str]:
    """Every path in a provenance record's ``inputs`` (list or name -> list), in order."""
    if isinstance(inputs, Mapping):
        for value in inputs.values():
            yield from iter_input_paths(value)
    elif isinstance(inputs, list):
        for entry in inputs:
            if isinstance(entry, Mapping):
                yield str(entry["path"])
            else:
                yield from iter_input_paths(entry)


# --- writing and reading sidecars ----------------------------------------------------------
def as_iso(started: float | str | None) -> str:
    if started is None:
        return now_iso()
    return started if isinstance(started, str) else now_iso(started)


def write_provenance(output: str | os.PathLike[str], inputs: Any = (),
                     params: Mapping[str, Any] | None = None, code: str | None = None,
                     started: float | str | None = None,
                     extra: Mapping[str, Any] | None = None, *,
                     outputs: list[str] | None = None) -> Path:
    """Write ``<output>.provenance.json`` atomically and return its path.

    Records the output's own content hash (reused downstream, so an artefact is hashed
    once), every input with sha256 (folders: see :func:`sha256_tree`), ``params``, the
    ``code`` version, package versions, device, host, user and start/end time.
    ``inputs`` is a list of paths or a mapping name -> path(s). ``started`` is a Unix
    time (``time.time()``) or an ISO string. ``extra`` may carry ``rule``, ``wildcards``
    (stored at the top level) and anything else (stored under ``extra``), e.g. ``lineage``.
    ``outputs`` lists every output of the job (defaults to ``[output]``).
    """
    from ..io import write_json

    extra = dict(extra or {})
    out = Path(output)
    record: dict[str, Any] = {
        "output": str(output),
        "outputs": [str(o) for o in (outputs or [output])],
        "output_sha256": content_sha256_fresh(out),
        "output_signature": stat_signature(out) if out.exists() else None,
        "rule": extra.pop("rule", None),
        "wildcards": dict(extra.pop("wildcards", None) or {}),
        "inputs": describe_inputs(inputs),
        "params": dict(params or {}),
        "code_version": code,
        "packages": package_versions(),
        "device": device_info(),
        "host": socket.gethostname(),
        "user": current_user(),
        "started": as_iso(started),
        "finished": now_iso(),
    }
    if isinstance(started, (int, float)):
        record["duration_s"] = round(time.time() - started, 3)
    if extra:
        record["extra"] = extra
    target = provenance_path(output)
    write_json(target, record)
    return target


def content_sha256_fresh(path: Path) -> str | None:
    """Hash a just-written output (never trusting an older sidecar of the same path)."""
    if path.is_dir():
        return sha256_tree(path)
    return sha256_file(path) if path.is_file() else None


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the sidecar of an artefact (give the artefact or the sidecar itself)."""
    p = Path(path)
    sidecar = p if p.name.endswith(SUFFIX) else provenance_path(p)
    try:
        return json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{sidecar}: not valid provenance JSON ({exc}); delete it and "
                         "re-run the rule that wrote it") from None
