"""Provenance sidecars and the lineage built from them."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from spectrovision.provenance import records as prov
from spectrovision.provenance.lineage import build_inputs_lineage, build_lineage, format_lineage, main
from spectrovision.provenance.job import provenance_for
from spectrovision.provenance.records import (
    read_provenance,
    sha256_tree,
    write_provenance,
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_sidecar_records_hashes_params_code_times_and_job(tmp_path):
    src = _write(tmp_path / "in.csv", "a,b\n1,2\n")
    out = _write(tmp_path / "out.csv", "x\n")
    started = time.time()
    side = write_provenance(out, inputs={"table": [src]}, params={"lr": 0.1}, code="0.1+abc",
                            started=started, extra={"rule": "train", "wildcards": {"fold": "0"},
                                                    "metrics": {"loss": 0.5}})
    record = read_provenance(out)
    assert side == tmp_path / "out.csv.provenance.json"
    assert record["inputs"]["table"][0]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert record["output_sha256"] == hashlib.sha256(b"x\n").hexdigest()
    assert record["params"] == {"lr": 0.1} and record["code_version"] == "0.1+abc"
    assert record["rule"] == "train" and record["wildcards"] == {"fold": "0"}
    assert record["extra"] == {"metrics": {"loss": 0.5}}
    assert record["started"] <= record["finished"] and record["duration_s"] >= 0
    assert record["packages"]["pandas"] and record["host"] and "platform" in record["device"]
    assert not list(tmp_path.glob(".*tmp*")), "the sidecar is written atomically"


def test_folder_hash_follows_names_and_contents_and_skips_hidden_files(tmp_path):
    folder = tmp_path / "render"
    _write(folder / "a.npy", "1")
    _write(folder / "sub" / "b.npy", "2")
    first = sha256_tree(folder)
    _write(folder / ".snakemake_timestamp", "")
    assert sha256_tree(folder) == first
    (folder / "a.npy").rename(folder / "c.npy")
    renamed = sha256_tree(folder)
    assert renamed != first
    _write(folder / "c.npy", "9")
    assert sha256_tree(folder) not in (first, renamed)


def test_input_hash_reuses_upstream_record_only_while_the_artefact_is_unchanged(tmp_path,
                                                                               monkeypatch):
    folder = tmp_path / "shard0"
    for i in range(5):
        _write(folder / f"s{i}.npy", str(i))
    write_provenance(folder, inputs=[], params={})
    calls = []
    real = prov.sha256_file
    monkeypatch.setattr(prov, "sha256_file", lambda p, *a: calls.append(p) or real(p, *a))
    out = _write(tmp_path / "stack.npy", "s")
    write_provenance(out, inputs=[folder])
    assert calls == [out], "the folder's recorded hash is reused, its files are not re-read"
    _write(folder / "s0.npy", "changed!")
    write_provenance(out, inputs=[folder])
    record = read_provenance(out)
    assert folder / "s0.npy" in calls
    assert record["inputs"][0]["sha256"] == sha256_tree(folder)


class _Namedlist(list):
    def __init__(self, **named):
        super().__init__(named.values())
        self._named = named

    def items(self):
        return self._named.items()


def test_provenance_for_reads_a_snakemake_like_object_and_writes_only_on_success(tmp_path):
    src = _write(tmp_path / "folds.csv", "sample_id,fold\n")
    out = tmp_path / "weights.pt"
    job = SimpleNamespace(input=_Namedlist(folds=str(src)),
                          output=_Namedlist(weights=str(out), curve=str(tmp_path / "c.png")),
                          params=_Namedlist(lr=0.01, code="v1", samples=list(range(50))),
                          rule="train", wildcards=_Namedlist(model="m", fold="1"))
    with pytest.raises(RuntimeError):
        with provenance_for(job):
            raise RuntimeError("training failed")
    assert not (tmp_path / "weights.pt.provenance.json").exists()
    with provenance_for(job, skip_params=("samples",)) as rec:
        out.write_text("w")
        rec.extra["best_epoch"] = 3
    record = read_provenance(out)
    assert record["params"] == {"lr": 0.01} and record["code_version"] == "v1"
    assert record["rule"] == "train" and record["wildcards"] == {"model": "m", "fold": "1"}
    assert record["outputs"] == [str(out), str(tmp_path / "c.png")]
    assert record["extra"] == {"best_epoch": 3}


def _pipeline(tmp_path: Path) -> dict[str, Path]:
    """raw -> runs -> render -> model (2 folds) -> predictions -> submission, with sidecars."""
    raw = [_write(tmp_path / "data" / f"S{i}.csv", f"t,m,i\n{i},1,2\n") for i in range(2)]
    runs = _write(tmp_path / "results/runs/shard0/S0.parquet", "r").parent
    write_provenance(runs, inputs={"raw": raw}, extra={"rule": "ingest"})
    render = _write(tmp_path / "results/render/tm/shard0/S0.npy", "img").parent
    write_provenance(render, inputs={"runs": runs}, params={"settings": {"n_mass": 8}},
                     extra={"rule": "render_shard", "wildcards": {"rep": "tm", "shard": "0"}})
    preds = []
    for fold in (0, 1):
        weights = _write(tmp_path / f"results/models/m/fold{fold}/weights.pt", f"w{fold}")
        curve = _write(weights.parent / "curve.png", "png")
        write_provenance(weights, inputs={"render": [render]}, params={"lr": 0.01},
                         code="0.1+train", outputs=[str(weights), str(curve)],
                         extra={"rule": "train", "wildcards": {"model": "m", "fold": fold}})
        pred = _write(tmp_path / f"results/predictions/m/fold{fold}/oof.parquet", f"p{fold}")
        write_provenance(pred, inputs={"weights": [weights], "curve": [curve]},
                         extra={"rule": "predict"})
        preds.append(pred)
    sub = _write(tmp_path / "results/submission.csv", "sample_id\n")
    write_provenance(sub, inputs={"predictions": preds},
                     params={"members": ["m"]}, extra={"rule": "submission",
                                                       "lineage": build_inputs_lineage(
                                                           {"predictions": preds})})
    return {"raw": raw[0], "render": render, "sub": sub, "weights": weights}


def test_lineage_reaches_raw_files_through_every_stage_once(tmp_path):
    paths = _pipeline(tmp_path)
    lineage = build_lineage(paths["sub"])
    nodes = lineage["nodes"]
    assert nodes[str(paths["raw"])]["kind"] == "file"
    assert nodes[str(paths["raw"])]["sha256"] == hashlib.sha256(
        paths["raw"].read_bytes()).hexdigest()
    assert nodes[str(paths["render"])]["rule"] == "render_shard"
    assert nodes[str(paths["weights"])]["wildcards"] == {"model": "m", "fold": 1}
    curve = str(paths["weights"].parent / "curve.png")
    assert nodes[curve]["rule"] == "train", "a secondary output is found via its job's sidecar"
    assert nodes[curve]["sha256"] == hashlib.sha256(b"png").hexdigest()
    text = format_lineage(lineage)
    assert text.count(f"{paths['render']}  sha256:") == 1 and "(see above)" in text
    assert "fold=0 model=m" in text and "lr=0.01" in text
    embedded = read_provenance(paths["sub"])["extra"]["lineage"]
    assert str(paths["raw"]) in embedded["nodes"]
    assert embedded["nodes"][str(paths["weights"])]["params"] == {"lr": 0.01}


def test_lineage_flags_an_input_changed_after_use(tmp_path, capsys):
    paths = _pipeline(tmp_path)
    _write(paths["render"] / "S0.npy", "re-rendered by hand")
    write_provenance(paths["render"], inputs=[], extra={"rule": "render_shard"})
    lineage = build_lineage(paths["sub"])
    stale = [e for n in lineage["nodes"].values() for e in n["inputs"] if e.get("stale")]
    assert {e["path"] for e in stale} == {str(paths["render"])}
    assert main([str(paths["sub"])]) == 0
    assert "STALE" in capsys.readouterr().out
    assert main([str(tmp_path / "nothing.csv")]) == 2
    assert "no provenance sidecar" in capsys.readouterr().err
    assert main([str(paths["sub"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["root"] == str(paths["sub"])
