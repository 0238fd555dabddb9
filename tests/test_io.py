"""Atomic writes: the target appears complete or not at all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spectrovision.io import atomic_path, write_json, write_npy, write_parquet


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("done")
        assert not target.exists()  # not visible before the rename
    assert target.read_text() == "done"
    assert list(target.parent.iterdir()) == [target]


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.parquet"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"  # previous version untouched
    assert list(tmp_path.iterdir()) == [target]  # temporary removed


def test_writers_round_trip(tmp_path):
    df = pd.DataFrame({"sample_id": ["a", "b"], "x": [1.5, 2.5]})
    write_parquet(tmp_path / "t.parquet", df)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), df)
    arr = np.arange(6, dtype=np.float16).reshape(2, 3)
    write_npy(tmp_path / "a.npy", arr)
    loaded = np.load(tmp_path / "a.npy")
    assert loaded.dtype == np.float16 and np.array_equal(loaded, arr)
    write_json(tmp_path / "m.json", {"v": np.float32(0.5), "n": np.int64(3)})
    assert (tmp_path / "m.json").read_text().count('"v": 0.5') == 1
