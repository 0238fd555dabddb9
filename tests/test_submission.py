"""The submission reproduces submission_format exactly, with probabilities inside (0, 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spectrovision.errors import InputError
from spectrovision.ensemble.submission import (build_submission, probabilities, read_submission_format,
                                      unlabelled_format)


def _format(tmp_path):
    path = tmp_path / "submission_format.csv"
    path.write_text("sample_id,b_label,a_label\nS0009,0.5,0.5\nS0002,0.5,0.5\nS0010,0.5,0.5\n")
    return path


def _logits(ids):
    table = pd.DataFrame({"sample_id": ids, "a_label": np.linspace(-50, 50, len(ids)),
                          "b_label": np.linspace(3, -3, len(ids))})
    return table


def test_submission_matches_the_format_ids_order_and_columns(tmp_path, caplog):
    fmt_path = _format(tmp_path)
    fmt = read_submission_format(fmt_path)
    probs = probabilities(_logits(["S0002", "S0010", "S0009", "S0099"]), ["a_label", "b_label"])
    caplog.set_level("INFO")
    sub = build_submission(probs, fmt, clip=1e-4)
    assert list(sub.columns) == list(fmt.columns)
    assert list(sub["sample_id"]) == list(fmt["sample_id"])
    values = sub[["b_label", "a_label"]].to_numpy()
    assert ((values > 0) & (values < 1)).all()  # extreme logits (+-50) are clipped inside
    by_id = probs.set_index("sample_id")
    assert sub.loc[0, "b_label"] == pytest.approx(by_id.loc["S0009", "b_label"])
    assert "1 predicted samples" in caplog.text  # S0099 is ignored, and counted
    out = tmp_path / "submission.csv"
    sub.to_csv(out, index=False)
    round_trip = pd.read_csv(out, dtype={"sample_id": str})
    assert list(round_trip.columns) == list(fmt.columns)
    assert list(round_trip["sample_id"]) == list(fmt["sample_id"])


def test_missing_ids_raise_an_error_naming_them(tmp_path):
    fmt = read_submission_format(_format(tmp_path))
    probs = probabilities(_logits(["S0002"]), ["a_label", "b_label"])
    with pytest.raises(InputError, match="S0009") as err:
        build_submission(probs, fmt)
    assert "S0010" in str(err.value) and "2 sample ids" in str(err.value)


def test_missing_label_column_is_an_error(tmp_path):
    fmt = read_submission_format(_format(tmp_path))
    probs = probabilities(_logits(["S0002", "S0009", "S0010"]), ["a_label"])
    with pytest.raises(InputError, match="b_label"):
        build_submission(probs, fmt)


def test_without_a_format_every_unlabelled_sample_in_sheet_order():
    fmt = unlabelled_format(["T2", "T1"], ["x", "y"])
    probs = probabilities(pd.DataFrame({"sample_id": ["T1", "T2"], "x": [0.0, 1.0],
                                        "y": [2.0, -2.0]}), ["x", "y"])
    sub = build_submission(probs, fmt)
    assert list(sub["sample_id"]) == ["T2", "T1"] and list(sub.columns) == ["sample_id", "x", "y"]
    assert sub.loc[0, "x"] == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_submission_provenance_hashes_inputs_and_keeps_params(tmp_path):
    import hashlib
    import json

    from spectrovision.provenance.records import write_provenance

    fmt = _format(tmp_path)
    path = write_provenance(tmp_path / "submission.csv", inputs={"format": [fmt]},
                            params={"clip": 1e-4}, code="x+1")
    record = json.loads(path.read_text())
    assert path.name == "submission.csv.provenance.json"
    assert record["inputs"]["format"][0]["sha256"] == hashlib.sha256(fmt.read_bytes()).hexdigest()
    assert record["params"] == {"clip": 1e-4} and record["code_version"] == "x+1"
    assert record["started"] <= record["finished"]


def test_run_submission_fills_labelled_template_rows_from_the_oof_logits(tmp_path):
    from spectrovision.ensemble.submission import run_submission

    labels = ["a_label", "b_label"]
    _logits(["S0010", "S0009"]).to_parquet(tmp_path / "test.parquet", index=False)
    _logits(["S0002", "S0010"]).assign(fold=0).to_parquet(tmp_path / "oof.parquet", index=False)
    inputs = {"test": tmp_path / "test.parquet", "oof": tmp_path / "oof.parquet",
              "format": _format(tmp_path)}
    out = {"submission": tmp_path / "submission.csv"}
    sub = run_submission(inputs=inputs, outputs=out, labels=labels, unlabelled=[],
                         clip=1e-4, task="multilabel")
    assert list(sub["sample_id"]) == ["S0009", "S0002", "S0010"]
    test = probabilities(_logits(["S0010", "S0009"]), labels).set_index("sample_id")
    oof = probabilities(_logits(["S0002", "S0010"]), labels).set_index("sample_id")
    assert sub.loc[2, "b_label"] == pytest.approx(test.loc["S0010", "b_label"])  # test wins
    assert sub.loc[1, "b_label"] == pytest.approx(oof.loc["S0002", "b_label"])
    assert pd.read_csv(out["submission"], dtype={"sample_id": str}).shape == (3, 3)
    no_format = run_submission(inputs={k: inputs[k] for k in ("test", "oof")}, outputs=out,
                               labels=labels, unlabelled=["S0009", "S0010"], clip=1e-4,
                               task="multilabel")
    assert list(no_format["sample_id"]) == ["S0009", "S0010"]
