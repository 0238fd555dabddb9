"""Provenance: what an artefact was made from (hashes, params, code, packages, device, times)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import socket
import time
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
TRACKED_PACKAGES = ("spectrovision", "numpy", "pandas", "pyarrow", "scikit-learn", "torch",
                    "torchvision", "timm", "snakemake")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def code_version(*modules: str) -> str:
    """Hash of the library modules behind a step (module names relative to the package,
    e.g. ``"render"`` or ``"models"`` for a sub-package) plus the package version.

    Used as a Snakemake param, so changing the code behind a rule re-runs that rule.
    """
    from . import __version__

    h = hashlib.sha256(__version__.encode())
    for module in sorted(modules):
        target = PACKAGE_DIR / module.replace(".", "/")
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
        if not files or not files[0].exists():
            raise FileNotFoundError(f"code_version: no module '{module}' in {PACKAGE_DIR}")
        for f in files:
            h.update(f.relative_to(PACKAGE_DIR).as_posix().encode())
            h.update(f.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_count": os.cpu_count()}
    try:
        import torch

        if torch.cuda.is_available():
            idx = torch.cuda.current_device()
            info["cuda_device"] = torch.cuda.get_device_name(idx)
            info["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        else:
            info["cuda_device"] = None
    except ImportError:  # pragma: no cover - torch is a dependency
        info["cuda_device"] = None
    return info


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_provenance(output: str | os.PathLike[str], *, inputs: Any = (),
                     params: dict[str, Any] | None = None, code: str | None = None,
                     started: str | None = None) -> Path:
    """Write ``<output>.provenance.json``: inputs with sha256, params, code version,
    package versions, device, host and start/end time. Returns the JSON's path.

    ``inputs`` is a list of paths or a mapping name -> path(s); folders are listed, not hashed.
    """
    from .io import write_json

    def describe(path: Any) -> dict[str, Any]:
        p = Path(path)
        entry: dict[str, Any] = {"path": str(p)}
        if p.is_file():
            entry["sha256"] = sha256_file(p)
            entry["bytes"] = p.stat().st_size
        return entry

    def expand(value: Any) -> list[dict[str, Any]]:
        if isinstance(value, (str, os.PathLike)):
            return [describe(value)]
        return [describe(v) for v in value]

    listed = ({k: expand(v) for k, v in inputs.items()} if isinstance(inputs, dict)
              else expand(inputs))
    target = Path(f"{output}.provenance.json")
    write_json(target, {
        "output": str(output),
        "inputs": listed,
        "params": params or {},
        "code_version": code,
        "packages": package_versions(),
        "device": device_info(),
        "host": socket.gethostname(),
        "started": started or now_iso(),
        "finished": now_iso(),
    })
    return target
