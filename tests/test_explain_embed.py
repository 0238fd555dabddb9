"""Grad-CAM++ and UMAP embedding of a model trained on toy renders with planted regions.

Label ``a`` lights up the cells (m/z 40-55, time columns 40-55) of a 64 x 64 render, label
``b`` the cells (8-23, 8-23); a resnet10t learns both in a few CPU epochs, so its maps of
``a`` must concentrate on the first block and of ``b`` on the second.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from spectrovision.analysis.embed import embedding_plot, run_embed, umap_2d
from spectrovision.errors import InputError
from spectrovision.analysis.explain import (choose_examples, find_target_layer, gradcam_figure,
                                   gradcam_maps, peak_cell, run_explain)
from spectrovision.learn.checkpoint import load_trained
from spectrovision.learn.models import create_model
from spectrovision.learn.settings import ModelSettings
from spectrovision.learn.train import run_train
from spectrovision.render.axes import render_axes
from spectrovision.render.runs import RenderSpec
from support import render_spec, windowed_render

LABELS = ["a", "b"]
REGIONS = {"a": (slice(40, 56), slice(40, 56)), "b": (slice(8, 24), slice(8, 24))}
SETTINGS = {"name": "toy", "representation": "toy", "backbone": "resnet10t", "net_width": None,
            "head": "pool", "weights": None,
            "in_chans": None, "epochs": 8, "batch_size": 8, "lr": 3e-3, "weight_decay": 0.01,
            "warmup_epochs": 0, "grad_clip": 1.0, "loss": "bce", "focal_gamma": 2.0,
            "label_smoothing": 0.0, "mixup_p": 0.0, "time_resize": None, "time_warp": None,
            "scan_jitter": 0, "scan_stride": 1, "render_log_floor": None,
            "mass_scale_sigma": 0.0, "global_scale_sigma": 0.0, "background_mix_quantiles": None,
            "sample_mix_p": 0.0, "sample_mix_mode": "mean",
            "amp": False, "channels_last": False, "drop_rate": 0.0, "keep_weights": "last",
            "ema_decay": None, "average_last_epochs": 0, "n_seeds": 1,
            "precise_bn": False, "validate_every": 1, "lr_cycles": 1, "metadata_columns": [],
            "seed": 3}


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict:
    """160 labelled renders (2 folds) + 12 unlabelled ones; a model trained on fold 0."""
    root = tmp_path_factory.mktemp("explain_toy")
    rng = np.random.default_rng(0)
    n, n_test = 160, 12
    y = (rng.random((n, 2)) < 0.5).astype(float)
    images = (rng.random((n + n_test, 1, 64, 64)) * 0.2).astype(np.float16)
    for j, label in enumerate(LABELS):
        rows, cols = REGIONS[label]
        images[:n][y[:, j] == 1, 0, rows, cols] += 1.0
    ids = {"train": [f"T{i:03d}" for i in range(n)], "test": [f"X{i:02d}" for i in range(n_test)]}
    stacks, csvs = [], []
    for split, block in (("train", images[:n]), ("test", images[n:])):
        np.save(root / f"stack_{split}.npy", block)
        pd.DataFrame({"sample_id": ids[split]}).to_csv(root / f"stack_{split}.csv", index=False)
        stacks.append(str(root / f"stack_{split}.npy"))
        csvs.append(str(root / f"stack_{split}.csv"))
    folds = pd.DataFrame({"sample_id": ids["train"], "fold": [i % 2 for i in range(n)]})
    folds.to_csv(root / "folds.csv", index=False)
    labels = pd.DataFrame(y, columns=LABELS, index=pd.Index(ids["train"], name="sample_id"))
    outputs = {k: str(root / name) for k, name in (
        ("weights", "model.pt"), ("metrics", "metrics.json"), ("history", "history.csv"),
        ("curve", "curve.png"))}
    metrics = run_train(inputs={"stacks": stacks, "stack_ids": csvs, "folds": root / "folds.csv"},
                        outputs=outputs, settings=SETTINGS, fold=0, task="multilabel",
                        label_table=labels, labels=LABELS, checkpoint=root / "ckpt.pt")
    assert metrics["best_val_loss"] < 0.3, "the toy model should learn the planted blocks"
    return {"root": root, "stacks": stacks, "stack_ids": csvs, "folds": str(root / "folds.csv"),
            "labels": labels, "y": y, "images": images, "ids": ids,
            "weights": outputs["weights"]}


def model_inputs(toy: dict) -> dict:
    return {k: toy[k] for k in ("weights", "stacks", "stack_ids", "folds")}


def held_out_positive(toy: dict, j: int) -> np.ndarray:
    rows = np.arange(0, len(toy["y"]), 2)  # fold 0: validation, never trained on
    return rows[toy["y"][rows, j] == 1]


def test_maps_concentrate_on_the_planted_region_of_their_label(toy):
    model, bundle = load_trained(toy["weights"])
    for j, label in enumerate(LABELS):
        rows = held_out_positive(toy, j)[:12]
        x = torch.from_numpy(toy["images"][rows].astype(np.float32))
        maps = gradcam_maps(model, x, [j] * len(rows), int(bundle["train_width"]))
        assert maps.shape == (len(rows), 64, 64)
        assert maps.min() >= 0.0 and maps.max() <= 1.0
        inside = np.zeros((64, 64), dtype=bool)
        inside[REGIONS[label]] = True
        assert maps[:, inside].mean() > 2 * maps[:, ~inside].mean(), label


def test_different_labels_give_different_maps(toy):
    model, bundle = load_trained(toy["weights"])
    both = np.intersect1d(held_out_positive(toy, 0), held_out_positive(toy, 1))[:4]
    x = torch.from_numpy(toy["images"][both].astype(np.float32))
    maps_a = gradcam_maps(model, x, [0] * len(both), 64)
    maps_b = gradcam_maps(model, x, [1] * len(both), 64)
    assert np.abs(maps_a - maps_b).mean() > 0.1


@pytest.mark.parametrize("backbone", ["resnet10t", "mobilenetv3_small_050"])
def test_target_layer_is_the_last_stage_of_feature_map_size(backbone):
    settings = ModelSettings.with_defaults({"name": "m", "representation": "r",
                                            "backbone": backbone, "head": "pool"})
    model = create_model(settings, (2, 64, 48), 3).eval()
    layer = find_target_layer(model, (2, 64, 48))
    seen = []
    hook = layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        fmap = model.feature_map(torch.zeros(1, 2, 64, 48))
    hook.remove()
    assert seen and seen[-1][2:] == fmap.shape[2:]
    maps = gradcam_maps(model, torch.rand(2, 2, 64, 40), [0, 2], 48)  # other width than 48
    assert maps.shape == (2, 64, 40)


def test_massconv1d_grad_cam_maps_vary_along_mz_only():
    """massconv1d's feature map has one vector per m/z row: its Grad-CAM maps are constant
    along time and vary along m/z (a time-axis 1-D net's are the other way round)."""
    torch.manual_seed(0)
    settings = ModelSettings.with_defaults({"name": "m", "representation": "r",
                                            "backbone": "massconv1d", "head": "pool"})
    model = create_model(settings, (1, 16, 24), 2).eval()
    maps = gradcam_maps(model, torch.rand(2, 1, 16, 24), [0, 1], 24)
    assert maps.shape == (2, 16, 24)
    np.testing.assert_allclose(maps, maps[:, :, :1].repeat(24, axis=2), atol=1e-6)
    assert (maps.std(axis=1) > 0.01).all()


def test_examples_are_held_out_positives_per_label():
    table = pd.DataFrame({"a": [1, 0, 1, 1], "b": [0, 1, 0, 0]},
                         index=["s3", "s1", "s2", "s0"])
    assert choose_examples(table, ["s3", "s2", "s1", "zz"], ["a", "b"], 2) == [
        ("s2", "a"), ("s3", "a"), ("s1", "b")]


def test_figure_has_axis_labels_and_titles():
    axes = render_axes(render_spec(x_axis="temp", n_mass=16, n_x=12))
    fig = gradcam_figure(np.random.rand(3, 2, 16, 12), np.random.rand(3, 16, 12),
                         ["x | a | p=0.90", "y | a | p=0.10", "z | b | p=0.50"],
                         log_mode="log1p1000", axes=axes, n_cols=2)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "temperature (scaled 0-1 per run)" and ax.get_ylabel() == "m/z"
    assert ax.get_title() == "x | a | p=0.90"
    assert [im.get_extent() for im in ax.images] == [[0.0, 1.0, -0.5, 15.5]] * 2
    plt.close(fig)


def test_figure_and_peak_on_a_mass_window_and_a_fixed_x_window():
    spec, images = windowed_render()  # the peak: m/z 15 at 505 degC
    axes = render_axes(spec)
    cam = images[:, 0].astype(np.float32)
    fig = gradcam_figure(images, cam, ["s | a | p=0.50"], log_mode="none", axes=axes, n_cols=1)
    ax = fig.axes[0]
    assert [im.get_extent() for im in ax.images] == [[0.0, 1100.0, 9.5, 20.5]] * 2
    assert ax.get_xlabel() == "temperature (degC)"
    plt.close(fig)
    assert peak_cell(cam[0], axes) == {"peak_mz": 15, "peak_x": 505.0,
                                       "peak_x_fraction": pytest.approx(50.5 / 110)}
    scaled = render_axes(render_spec(n_mass=11, n_x=110))
    assert peak_cell(cam[0], scaled)["peak_mz"] == 5
    assert peak_cell(cam[0], scaled)["peak_x"] == pytest.approx(50.5 / 110)


def test_run_explain_writes_grid_and_peaks_inside_the_regions(toy, tmp_path):
    out = {"figure": str(tmp_path / "gradcam.png"), "table": str(tmp_path / "gradcam.csv")}
    # the toy's 64 x 64 renders as m/z 100-163 on a 0-640 degC window in 10 degC steps
    spec = render_spec(x_axis="temp", mass_window=[100, 163], x_window=[0, 640], x_step=10)
    info = run_explain(inputs=model_inputs(toy), outputs=out,
                       settings={"samples_per_label": 2, "labels": None},
                       label_table=toy["labels"], log_mode="log1p1000",
                       axes=render_axes(spec).as_dict())
    assert info["n_maps"] == 4
    table = pd.read_csv(out["table"], dtype={"sample_id": str})
    assert list(table.columns) == ["sample_id", "label", "truth", "prob", "peak_mz", "peak_x",
                                   "peak_x_fraction"]
    assert list(table["label"]) == ["a", "a", "b", "b"]
    assert (table["truth"] == 1).all() and (table["prob"] > 0.5).all()
    held_out = set(toy["ids"]["train"][0::2])
    assert set(table["sample_id"]) <= held_out
    for row in table.itertuples():
        rows, cols = REGIONS[row.label]
        assert 100 + rows.start - 8 <= row.peak_mz < 100 + rows.stop + 8
        assert cols.start - 8 <= row.peak_x_fraction * 64 < cols.stop + 8
        assert row.peak_x == pytest.approx(row.peak_x_fraction * 640)
    assert Path(out["figure"]).stat().st_size > 20_000
    with pytest.raises(InputError, match="not among"):
        run_explain(inputs=model_inputs(toy), outputs=out,
                    settings={"samples_per_label": 1, "labels": ["zzz"]},
                    label_table=toy["labels"], log_mode="none", axes=render_axes(spec))
    with pytest.raises(ValueError, match="do not match the representation's axes"):
        run_explain(inputs=model_inputs(toy), outputs=out,
                    settings={"samples_per_label": 1, "labels": None}, label_table=toy["labels"],
                    log_mode="none", axes=render_axes(render_spec(n_mass=64, n_x=32)))


def test_umap_is_deterministic():
    feats = np.random.default_rng(0).normal(size=(40, 8))
    a = umap_2d(feats, n_neighbors=15, min_dist=0.1, seed=5)
    b = umap_2d(feats, n_neighbors=15, min_dist=0.1, seed=5)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (40, 2)


def test_run_embed_lists_every_sample_once_with_labelled_flags(toy, tmp_path):
    out = {"table": str(tmp_path / "umap.parquet"), "plot": str(tmp_path / "umap.png")}
    kwargs = dict(inputs=model_inputs(toy), outputs=out, splits=["train", "test"],
                  settings={"color_label": "b", "n_neighbors": 10, "min_dist": 0.1},
                  label_table=toy["labels"], seed=3)
    run_embed(**kwargs)
    table = pd.read_parquet(out["table"])
    assert sorted(table["sample_id"]) == sorted(toy["ids"]["train"] + toy["ids"]["test"])
    assert table["sample_id"].is_unique
    by_id = table.set_index("sample_id")
    assert by_id.loc[toy["ids"]["train"], "labelled"].all()
    assert not by_id.loc[toy["ids"]["test"], "labelled"].any()
    assert (by_id.loc[toy["ids"]["test"], "split"] == "test").all()
    np.testing.assert_array_equal(by_id.loc[toy["ids"]["train"], "truth"], toy["y"][:, 1])
    assert by_id.loc[toy["ids"]["test"], "truth"].isna().all()
    assert table["prob"].between(0, 1).all()
    assert Path(out["plot"]).stat().st_size > 20_000
    first = table[["x", "y"]].to_numpy()
    run_embed(**kwargs)
    np.testing.assert_array_equal(pd.read_parquet(out["table"])[["x", "y"]].to_numpy(), first)


def test_embedding_plot_marks_unlabelled_samples_apart():
    table = pd.DataFrame({"sample_id": list("abcd"), "split": ["train"] * 2 + ["test"] * 2,
                          "labelled": [True, True, False, False], "x": [0, 1, 2, 3.0],
                          "y": [0, 1, 0, 1.0], "truth": [0, 1, np.nan, np.nan],
                          "prob": [0.1, 0.9, 0.3, 0.7]})
    fig = embedding_plot(table, "a")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["labelled, a = 0", "labelled, a = 1", "unlabelled (colour = predicted p)"]
    plt.close(fig)


def test_embed_and_explain_see_the_evaluation_view_of_an_augmented_model(tmp_path):
    # a 1-D net trained with the background-quantile mix on a render read at every 2nd
    # column: embed's probabilities must be predict's (centre columns, mean background
    # subtracted), not those of the stored full-width images
    from spectrovision.learn.augment import CachedAugment
    from spectrovision.learn.predict import predict_logits

    rng = np.random.default_rng(5)
    n = 48
    y = (rng.random((n, 2)) < 0.5).astype(float)
    images = (rng.random((n, 1, 16, 32)) * 0.3 + 0.2).astype(np.float16)
    images[y[:, 0] == 1, 0, 3, 10:14] = 1.0
    ids = [f"T{i:03d}" for i in range(n)]
    np.save(tmp_path / "stack_train.npy", images)
    pd.DataFrame({"sample_id": ids}).to_csv(tmp_path / "stack_train.csv", index=False)
    pd.DataFrame({"sample_id": ids, "fold": [i % 2 for i in range(n)]}).to_csv(
        tmp_path / "folds.csv", index=False)
    labels = pd.DataFrame(y, columns=LABELS, index=pd.Index(ids, name="sample_id"))
    settings = {**SETTINGS, "backbone": "conv1d", "epochs": 1, "scan_stride": 2,
                "scan_jitter": 1, "render_log_floor": 1e-4,
                "background_mix_quantiles": [0.05, 0.2]}
    inputs = {"stacks": [str(tmp_path / "stack_train.npy")],
              "stack_ids": [str(tmp_path / "stack_train.csv")], "folds": tmp_path / "folds.csv"}
    weights = tmp_path / "model.pt"
    run_train(inputs=inputs, outputs={"weights": str(weights), "metrics": str(tmp_path / "m.json"),
                                      "history": str(tmp_path / "h.csv"),
                                      "curve": str(tmp_path / "c.png")},
              settings=settings, fold=0, task="multilabel", label_table=labels, labels=LABELS,
              checkpoint=tmp_path / "ckpt.pt")
    model, bundle = load_trained(weights)
    augment = CachedAugment.from_settings(bundle["settings"])
    x = torch.from_numpy(images)
    expected = predict_logits(model, x, [int(bundle["train_width"])], 16, augment=augment,
                              background=augment.background(x.float()))
    out = {"table": str(tmp_path / "umap.parquet"), "plot": str(tmp_path / "umap.png")}
    run_embed(inputs={**inputs, "weights": str(weights)}, outputs=out, splits=["train"],
              settings={"color_label": "a", "n_neighbors": 5, "min_dist": 0.1},
              label_table=labels, seed=3)
    prob = pd.read_parquet(out["table"]).set_index("sample_id").loc[ids, "prob"].to_numpy()
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-expected[:, 0])), rtol=1e-5, atol=1e-6)
    raw = predict_logits(model, x, [int(bundle["train_width"])], 16)  # the old, wrong input
    assert np.abs(1 / (1 + np.exp(-raw[:, 0])) - prob).max() > 1e-3
    # explain draws the 16 centre columns over the render's whole x window
    spec = render_spec(n_mass=16, x_window=[0, 320], x_step=10, log="clipped_log10")
    table = run_explain(inputs={**inputs, "weights": str(weights)},
                        outputs={"figure": str(tmp_path / "g.png"),
                                 "table": str(tmp_path / "g.csv")},
                        settings={"samples_per_label": 2, "labels": ["a"]},
                        label_table=labels, log_mode="clipped_log10",
                        axes=render_axes(spec).as_dict())
    peaks = pd.read_csv(tmp_path / "g.csv")
    assert peaks["peak_x"].between(0, 320).all() and len(peaks) == 2
    assert table["width"] == 16 and table["n_maps"] == 2
