"""The layout registry (spectrovision.data.layouts): built-in layouts, dispatch to a newly
registered one, representation keys per layout, and code versions per layout and stage."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from spectrovision.config.schema import load_schema
from spectrovision.data import layouts
from spectrovision.data.ingest import QC_SCHEMA
from spectrovision.data.layouts import (IMAGE_KEYS, LAYOUTS, ImageLayout, Layout, RunLayout,
                                        get_layout, layout_code_version,
                                        representation_settings)
from spectrovision.errors import ConfigError
from spectrovision.provenance import code
from spectrovision.config.schema import representation_block
from spectrovision.render.images import ImageSpec
from spectrovision.render.runs import RenderSpec, render_sample
from support import render_spec, image_spec


class ToyLayout(Layout):
    """A throwaway layout: one text file per sample, 'rendered' as its length."""

    modules = {"ingest": ("data.folds",), "qc": ("data.folds",), "render": ("metrics",)}

    def representation_settings(self, settings):
        return {"scale": settings["scale"]}

    def render_view(self, settings):
        return {"log": "toy", "x_axis": "toy"}

    def ingest_shard(self, *, samples, outputs, settings):
        out = Path(outputs["runs"])
        out.mkdir(parents=True)
        for sample in samples:
            (out / f"{sample['sample_id']}.txt").write_text(sample["features_path"])
        pd.DataFrame({"sample_id": [s["sample_id"] for s in samples]}).to_parquet(outputs["qc"])
        return {"n_samples": len(samples), "toy": settings["qc"]}

    def write_qc_summary(self, *, inputs, outputs, findings):
        Path(outputs["summary"]).write_text(f"{len(inputs['shards'])} toy shards\n")

    def render_shard(self, *, samples, inputs, outputs, settings):
        out = Path(outputs["images"])
        out.mkdir(parents=True)
        written = []
        for sample in samples:
            text = (Path(inputs["runs"]) / f"{sample['sample_id']}.txt").read_text()
            written.append(out / f"{sample['sample_id']}.npy")
            np.save(written[-1], np.full((1, 1, 1), settings["scale"] * len(text)))
        return written


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):
    """The registry, restored after the test."""
    monkeypatch.setattr(layouts, "LAYOUTS", LAYOUTS.copy())
    return layouts.LAYOUTS


@pytest.mark.parametrize("how", ["class", "string"])
def test_a_registered_layout_is_what_the_registry_dispatches_to(registry, tmp_path, how):
    registry.register("toy", ToyLayout if how == "class" else f"{__name__}:ToyLayout")
    layout = get_layout("toy")
    assert isinstance(layout, ToyLayout) and layout.name == "toy"
    samples = [{"sample_id": "a", "features_path": "xyz"}, {"sample_id": "b",
                                                           "features_path": "pq"}]
    counts = layout.ingest_shard(samples=samples, settings={"qc": "q", "columns": {}},
                                 outputs={"runs": tmp_path / "runs", "qc": tmp_path / "qc.pq"})
    assert counts == {"n_samples": 2, "toy": "q"}
    layout.write_qc_summary(inputs={"shards": [tmp_path / "qc.pq"]}, findings={},
                            outputs={"qc": tmp_path / "all.pq", "summary": tmp_path / "s.md"})
    assert (tmp_path / "s.md").read_text() == "1 toy shards\n"
    settings = representation_settings({"scale": 2, "n_mass": 9}, "toy")
    assert settings == {"scale": 2}
    written = layout.render_shard(samples=samples, inputs={"runs": tmp_path / "runs"},
                                  outputs={"images": tmp_path / "render"}, settings=settings)
    assert [float(np.load(p)[0, 0, 0]) for p in written] == [6.0, 4.0]
    assert layout_code_version("toy", "ingest") == code.code_version("data.folds")
    assert layout_code_version("toy", "render") == code.code_version("metrics")
    with pytest.raises(ConfigError, match="no stage 'train'"):
        layout_code_version("toy", "train")


def test_built_in_layouts_and_an_unknown_one():
    for name in ("mars2", "mars1", "generic"):
        assert isinstance(get_layout(name), RunLayout) and get_layout(name).name == name
    assert type(get_layout("images")) is ImageLayout
    schema_layouts = load_schema()["properties"]["data"]["properties"]["layout"]["enum"]
    assert LAYOUTS.names() == schema_layouts
    with pytest.raises(ConfigError, match="'data/layout': unknown data layout 'nope'. Fix: "
                       "choose one of mars2, mars1, generic, instrument, images"):
        get_layout("nope")


def test_each_layout_keeps_the_representation_keys_its_render_reads():
    props = load_schema()["properties"]["representations"]["additionalProperties"]["properties"]
    defaults = {k: v["default"] for k, v in props.items()}
    images = get_layout("images").representation_settings(defaults)
    assert tuple(images) == IMAGE_KEYS == tuple(f.name for f in fields(ImageSpec))
    assert ImageSpec.from_config(images) == image_spec()
    runs = get_layout("mars2").representation_settings(defaults)
    assert RenderSpec.from_config(runs) == render_spec()  # no image key left over
    assert get_layout("images").render_view(None) == {"log": "linear", "axes": None}
    assert get_layout("mars1").render_view(None) == {"log": None, "axes": None}
    view = get_layout("mars1").render_view(defaults)  # the image keys are left out
    assert view["log"] == "log1p1000"
    assert view["axes"] == {"first_mass": 0, "n_mass": 256, "n_x": 192, "x_extent": [0.0, 1.0],
                            "x_label": "time (scaled 0-1 per run)", "y_label": "m/z",
                            "rows_down": False}
    pixels = get_layout("images").render_view(defaults)["axes"]
    assert (pixels["n_mass"], pixels["n_x"]) == image_spec().image_size


def test_the_registry_imports_no_layout_code():
    closure = code.import_closure(["spectrovision.data.layouts"])
    for module in ("data.ingest", "data.images", "data.sheet", "render.runs", "render.images"):
        assert f"spectrovision.{module}" not in closure


def _versions() -> dict[tuple[str, str], str]:
    code.direct_imports.cache_clear()
    return {(layout, stage): layout_code_version(layout, stage)
            for layout in ("mars2", "images") for stage in layouts.STAGES}


@pytest.mark.parametrize("edited, changed", [
    ("render/images.py", {("images", "render")}),
    ("data/images.py", {("images", "ingest"), ("images", "qc")}),
    ("render/runs.py", {("mars2", "render")}),
    # the image ingest reuses the run file checks, its QC summary the shared writer
    ("data/ingest.py", {("mars2", "ingest"), ("mars2", "qc"), ("images", "ingest"),
                        ("images", "qc")}),
])
def test_editing_one_layouts_code_changes_only_its_stages_versions(package_copy, edited,
                                                                   changed):
    before = _versions()
    path = package_copy / edited
    path.write_text(path.read_text() + "\n# edited\n")
    after = _versions()
    assert {key for key in before if before[key] != after[key]} == changed


# --- the built-in layouts through the registry ------------------------------------------------

def test_the_run_layout_ingests_summarises_and_renders_a_shard(tmp_path):
    raw = tmp_path / "S1.csv"
    pd.DataFrame({"time": [0.0, 1.0, 2.0], "mass": [4.0, 18.2, 44.0],
                  "intensity": [5.0, -1.0, 3.0]}).to_csv(raw, index=False)
    layout = get_layout("mars2")
    schema = load_schema()["properties"]
    qc_cfg = {k: v["default"] for k, v in schema["qc"]["properties"].items()}
    columns = {"time": "time", "temp": None, "mass": "mass", "intensity": "intensity"}
    outputs = {"runs": tmp_path / "runs", "qc": tmp_path / "qc" / "shard0.parquet"}
    counts = layout.ingest_shard(samples=[{"sample_id": "S1", "features_path": str(raw),
                                           "md5": None}],
                                 outputs=outputs, settings={"columns": columns, "qc": qc_cfg})
    assert counts == {"n_samples": 1, "n_rows": 2}  # m/z 4 dropped
    summary = {"qc": tmp_path / "qc.parquet", "summary": tmp_path / "qc_summary.md"}
    layout.write_qc_summary(inputs={"shards": [outputs["qc"]]}, outputs=summary, findings={})
    assert pd.read_parquet(summary["qc"]).columns.tolist() == QC_SCHEMA.names
    assert "1 runs ingested" in summary["summary"].read_text()
    settings = layout.representation_settings(  # as the render rule passes it: validated
        representation_block({"n_mass": 50, "n_x": 4, "derivatized_channel": True}))
    written = layout.render_shard(samples=[{"sample_id": "S1", "derivatized": 1}],
                                  inputs={"runs": outputs["runs"]},
                                  outputs={"images": tmp_path / "render"}, settings=settings)
    run = pd.read_parquet(outputs["runs"] / "S1.parquet")
    assert np.array_equal(np.load(written[0]),
                          render_sample(run, RenderSpec.from_config(settings), 1))


def test_the_image_layout_ingests_summarises_and_renders_a_shard(tmp_path):
    Image.fromarray(np.arange(24 * 16, dtype=np.uint8).reshape(24, 16)).save(tmp_path / "a.png")
    layout = get_layout("images")
    outputs = {"runs": tmp_path / "runs", "qc": tmp_path / "qc" / "shard0.parquet"}
    samples = [{"sample_id": "A", "features_path": str(tmp_path / "a.png"), "md5": None}]
    counts = layout.ingest_shard(samples=samples, outputs=outputs,
                                 settings={"columns": {}, "qc": {"check_md5": True}})
    assert counts == {"n_samples": 1}
    summary = {"qc": tmp_path / "qc.parquet", "summary": tmp_path / "qc_summary.md"}
    layout.write_qc_summary(inputs={"shards": [outputs["qc"]]}, outputs=summary,
                            findings={"val without labels": ["A"]})
    text = summary["summary"].read_text()
    assert "1 images decoded" in text and "val without labels: 1 sample(s): A" in text
    assert pd.read_parquet(summary["qc"])["height"].tolist() == [24]
    written = layout.render_shard(samples=samples, inputs={"runs": outputs["runs"]},
                                  outputs={"images": tmp_path / "render"},
                                  settings=representation_block({"image_size": [8, 12], "channels": 3}))
    assert np.load(written[0]).shape == (3, 8, 12)
