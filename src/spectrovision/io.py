"""Atomic file output: write to a temporary name beside the target, then rename.

An interrupted job never leaves a half-written file that looks complete. The temporary is
made private (``mkstemp``: mode 0600); the renamed result gets the mode a plain ``open``
would give it under the user's umask (``0o666 & ~umask``, e.g. 0644 or group-writable 0664),
so results on shared storage stay readable for the lab group.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def current_umask() -> int:
    """The process umask (read from /proc where it can be read without changing it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def output_mode(directory: bool = False) -> int:
    """The mode a new file (or folder) gets under the user's umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success.

    The temporary keeps the target's suffix so libraries that dispatch on it still work.
    On an exception the temporary is removed and the target is left untouched. The result
    gets :func:`output_mode` (the temporary itself is private while it is written).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, output_mode(directory=tmp_path.is_dir()))
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_parquet(path: str | os.PathLike[str], df: pd.DataFrame, **kwargs: Any) -> None:
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, **kwargs)


def write_csv(path: str | os.PathLike[str], df: pd.DataFrame, **kwargs: Any) -> None:
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def save_figure(path: str | os.PathLike[str], fig: Any, **kwargs: Any) -> None:
    """Save a matplotlib figure atomically (format from the target's suffix)."""
    target = Path(path)
    kwargs.setdefault("format", target.suffix.lstrip(".") or "png")
    with atomic_path(target) as tmp:
        fig.savefig(tmp, **kwargs)


# The cell texts pandas.read_csv reads as missing by default (its documented na_values).
NA_TEXTS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
            "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


def read_csv(path: str | os.PathLike[str], id_columns: Sequence[str] | None = ("sample_id",),
             **kwargs: Any) -> pd.DataFrame:
    """A CSV table whose id columns are text exactly as written: a sample named ``NA``,
    ``null`` or ``None`` keeps its name (pandas' default reads those as missing) and an
    empty id cell reads as ``""``. Every other column gets pandas' usual missing values
    (:data:`NA_TEXTS`). ``id_columns=None``: the first column is the id column. Other
    keyword arguments go to :func:`pandas.read_csv` (``dtype`` included)."""
    names = [str(n) for n in pd.read_csv(path, nrows=0).columns]
    ids = names[:1] if id_columns is None else [c for c in id_columns if c in names]
    dtype = kwargs.pop("dtype", None)
    if dtype is None or isinstance(dtype, dict):
        dtype = {**(dtype or {}), **{c: str for c in ids}}
    return pd.read_csv(path, dtype=dtype, keep_default_na=False,
                       na_values={c: list(NA_TEXTS) for c in names if c not in ids}, **kwargs)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
