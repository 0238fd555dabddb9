"""Report figures and tables: built from small generated tables, checked for content."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import LogNorm

from spectrovision.data.layouts import get_layout
from spectrovision.errors import ConfigError
from spectrovision.render.axes import RenderAxes, render_axes
from spectrovision.config.schema import representation_block
from spectrovision.render.runs import RenderSpec
from spectrovision.report import figures as report
from support import render_spec, windowed_render


def _scores() -> pd.DataFrame:
    rows = []
    losses = {"m1": [0.2, 0.4], "prior": [0.6, 0.7], "ensemble": [0.15, 0.35]}
    for member, (a, b) in losses.items():
        rows += [{"member": member, "label": "acid", "log_loss": a},
                 {"member": member, "label": "salt", "log_loss": b},
                 {"member": member, "label": "mean", "log_loss": (a + b) / 2}]
    return pd.DataFrame(rows)


def test_per_label_table_orders_labels_then_mean_and_members_best_first():
    table = report.per_label_loss_table(_scores())
    assert list(table.index) == ["acid", "salt", "mean"]
    assert list(table.columns) == ["ensemble", "m1", "prior"]
    assert table.loc["salt", "prior"] == pytest.approx(0.7)


def test_baseline_comparison_bars_carry_each_members_mean_and_kind_colour():
    fig = report.baseline_comparison(report.per_label_loss_table(_scores()), ["prior"])
    bars = {p.get_y(): p for p in fig.axes[0].patches}
    widths = sorted(round(p.get_width(), 4) for p in bars.values())
    assert widths == [0.25, 0.3, 0.65]
    colours = {round(p.get_width(), 4): p.get_facecolor()[:3] for p in bars.values()}
    assert colours[0.65] != colours[0.3] != colours[0.25]


def test_per_label_bars_one_bar_per_member_and_label_without_the_mean():
    fig = report.per_label_loss_bars(report.per_label_loss_table(_scores()), ["prior"])
    heights = sorted(round(p.get_height(), 4) for p in fig.axes[0].patches)
    assert heights == [0.15, 0.2, 0.35, 0.4, 0.6, 0.7]


def test_reliability_table_bins_probabilities_and_observed_rates():
    y = np.array([[0, 1], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.05, 0.95], [0.15, 0.91], [0.95, 0.99], [0.02, 0.5]])
    table = report.reliability_table(y, p, n_bins=10)
    assert list(table["bin"]) == [0, 1, 5, 9]
    assert list(table["count"]) == [2, 1, 1, 4]
    assert table.set_index("bin").loc[9, "observed_rate"] == pytest.approx(1.0)
    assert table.set_index("bin").loc[0, "observed_rate"] == 0.0
    perfect = report.reliability_table(np.array([0, 1]), np.array([0.0, 1.0]), 10)
    assert report.expected_calibration_error(perfect) == 0.0
    assert report.expected_calibration_error(table) > 0


def test_member_correlation_aligns_samples_by_id():
    labels = ["a", "b"]
    base = pd.DataFrame({"sample_id": ["s1", "s2", "s3"], "a": [1.0, 2.0, 3.0],
                         "b": [0.0, -1.0, 5.0]})
    shuffled = base.iloc[[2, 0, 1]].reset_index(drop=True)
    negated = base.assign(a=-base["a"], b=-base["b"])
    corr = report.member_correlation({"x": base, "y": shuffled, "z": negated}, labels)
    assert corr.loc["x", "y"] == pytest.approx(1.0)
    assert corr.loc["x", "z"] == pytest.approx(-1.0)


def test_render_grid_labels_axes_and_uses_a_log_scale_for_raw_intensities():
    rng = np.random.default_rng(0)
    images = rng.random((4, 2, 12, 8)).astype(np.float32)
    axes = render_axes(render_spec(n_mass=12, n_x=8))
    fig = report.render_grid(images, ["s1", "s2", "s3", "s4"], log_mode="none", axes=axes)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 4 + 0 and shown[0].get_ylabel() == "m/z"
    assert shown[0].get_xlabel() == "time (scaled 0-1 per run)"
    assert shown[1].get_title() == "s2"
    assert shown[0].images[0].get_extent() == [0.0, 1.0, -0.5, 11.5]
    assert isinstance(shown[0].images[0].norm, LogNorm)
    assert shown[0].images[0].get_array().shape == (12, 8), "channel 0 only"
    linear = report.render_grid(images[:1], ["s1"], log_mode="log1p1000", axes=axes)
    assert not isinstance(linear.axes[0].images[0].norm, LogNorm)
    with pytest.raises(ValueError, match="do not match the representation's axes"):
        report.render_grid(images, list("abcd"), axes=render_axes(render_spec(n_mass=13, n_x=8)))


def test_render_grid_draws_the_mass_window_and_the_fixed_x_window():
    spec, images = windowed_render()
    assert images.shape == (1, 1, 11, 110)
    axes = render_axes(spec)
    ax = report.render_grid(images, ["S1"], log_mode="none", axes=axes).axes[0]
    image = ax.images[0]
    assert image.get_extent() == [0.0, 1100.0, 9.5, 20.5]
    assert ax.get_ylim() == (9.5, 20.5) and ax.get_xlim() == (0.0, 1100.0)
    assert ax.get_xlabel() == "temperature (degC)" and ax.get_ylabel() == "m/z"
    row, col = np.unravel_index(np.argmax(image.get_array()), image.get_array().shape)
    left, right, bottom, top = image.get_extent()
    # the brightest cell is drawn at m/z 15 and 505 degC
    assert bottom + (row + 0.5) * (top - bottom) / 11 == 15
    assert left + (col + 0.5) * (right - left) / 110 == 505
    assert axes.mass_at(row) == 15 and axes.x_at(col) == 505


def test_axes_labels_per_x_axis_and_layout():
    time = render_spec(x_window=[0, 30], x_step=0.5)
    assert render_axes(time, "min").x_label == "time (min)"
    assert render_axes(time).x_label == "time (the runs' time unit)"
    assert render_axes(render_spec(x_axis="temp")).x_label == "temperature (scaled 0-1 per run)"
    bleed = render_spec(x_axis="bleed", bleed_masses=[207, 281])
    assert render_axes(bleed).x_label == "bleed pseudo-temperature (scaled 0-1 per run)"
    mars2 = get_layout("mars2").render_view(representation_block(
        {"x_axis": "time", "x_window": [0, 30], "x_step": 0.5, "mass_window": [10, 20],
         "log": "none"}))
    assert mars2["log"] == "none"
    axes = RenderAxes.of(mars2["axes"])
    assert axes == render_axes(render_spec(x_window=[0, 30], x_step=0.5, mass_window=[10, 20],
                                          log="none"), "min")
    assert axes.extent == (0.0, 30.0, 9.5, 20.5) and axes.n_x == 60
    assert RenderAxes.of(json.loads(json.dumps(axes.as_dict()))) == axes  # a rule param
    assert get_layout("mars1").render_view(representation_block(
        {"x_window": [0, 600], "x_step": 5}))["axes"]["x_label"] == "time (s)"
    assert get_layout("generic").render_view(representation_block(
        {"x_window": [0, 600], "x_step": 5}))["axes"]["x_label"] == "time (the runs' time unit)"
    temp = representation_block({"x_axis": "temp", "x_window": [30, 900], "x_step": 10})
    for layout in ("mars1", "generic"):  # every temperature axis is in degC
        assert get_layout(layout).render_view(temp)["axes"]["x_label"] == "temperature (degC)"
    pixels = RenderAxes.of(get_layout("images").render_view(
        representation_block({"image_size": [32, 48]}))["axes"])
    assert pixels.extent == (-0.5, 47.5, 31.5, -0.5) and pixels.x_at(3) == 3.0
    assert pixels.y_label == "image y (pixel row)"
    # an image's row 0 is drawn at the top, as the file holds it; m/z rows go up
    picture = np.zeros((1, 1, 32, 48), np.float32)
    picture[0, 0, 0, 0] = 1.0  # the file's top-left pixel
    ax = report.render_grid(picture, ["p"], log_mode="linear", axes=pixels).axes[0]
    assert ax.get_ylim() == (31.5, -0.5)  # y increases downwards
    assert ax.images[0].origin == "upper"
    assert axes.origin == "lower"
    with pytest.raises(ConfigError, match="unknown keys \\['x_axis'\\]"):
        RenderAxes.of({**axes.as_dict(), "x_axis": "time"})


def test_selection_plot_follows_the_greedy_path():
    selection = {"selection": "greedy", "members": ["b"],
                 "greedy_path": [{"step": 1, "action": "add", "member": "a", "loss": 0.5},
                                 {"step": 2, "action": "add", "member": "b", "loss": 0.4},
                                 {"step": 3, "action": "remove", "member": "a", "loss": 0.38}]}
    ax = report.selection_path_plot(selection).axes[0]
    assert list(ax.lines[0].get_ydata()) == [0.5, 0.4, 0.38]
    assert [t.get_text() for t in ax.texts] == ["+a", "+b", "-a"]


def test_selection_plot_of_a_bagged_selection_shows_the_weights():
    selection = {"selection": "bagged", "members": ["b", "a"], "greedy_path": [],
                 "bags": [{"bag": 1, "members": ["b"]}, {"bag": 2, "members": ["a", "b"]}],
                 "weights": {"b": {"x": 0.75, "y": 0.75}, "a": {"x": 0.25, "y": 0.25}}}
    ax = report.selection_path_plot(selection).axes[0]
    assert [bar.get_height() for bar in ax.patches] == [0.75, 0.25]
    assert "2 bags" in ax.get_ylabel()


def test_score_report_writes_table_page_and_figures(tmp_path):
    scores = tmp_path / "scores.csv"
    _scores().to_csv(scores, index=False)
    out = {k: tmp_path / "report" / n for k, n in
           (("table", "t.csv"), ("page", "t.html"), ("bars", "b.png"), ("base", "c.png"))}
    report.run_score_report(inputs={"scores": scores},
                            outputs={**out, "baselines": out["base"]}, baselines=["prior"])
    table = pd.read_csv(out["table"])
    assert list(table.columns) == ["label", "ensemble", "m1", "prior"]
    assert "<table" in out["page"].read_text()
    assert out["bars"].read_bytes()[:4] == b"\x89PNG"


def test_render_examples_pick_evenly_spaced_rows_of_the_stack(tmp_path):
    stack = np.zeros((10, 1, 6, 5), dtype=np.float16)
    stack[:, 0, 0, 0] = np.arange(10)
    np.save(tmp_path / "stack.npy", stack)
    pd.DataFrame({"sample_id": [f"S{i}" for i in range(10)]}).to_csv(tmp_path / "s.csv",
                                                                    index=False)
    report.run_render_examples(inputs={"stack": tmp_path / "stack.npy", "ids": tmp_path / "s.csv"},
                               outputs={"grid": tmp_path / "r.png"}, n_examples=3, log_mode="log1p1000",
                               axes=render_axes(render_spec(n_mass=6, n_x=5)).as_dict(),
                               title="t")
    assert (tmp_path / "r.png").stat().st_size > 1000
    assert list(report.example_rows(10, 3)) == [0, 4, 9]
    assert list(report.example_rows(2, 6)) == [0, 1]


def test_selection_file_entry_point_reads_json(tmp_path):
    path = tmp_path / "selection.json"
    path.write_text(json.dumps({"selection": "all", "members": ["a", "b"],
                                "oof_mean_log_loss": {"a": 0.3, "b": 0.2}}))
    report.run_selection_plot(inputs={"selection": path}, outputs={"plot": tmp_path / "sel.png"})
    assert (tmp_path / "sel.png").exists()
