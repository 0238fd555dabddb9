"""Image data sets (data.layout images, task multiclass): the particle generator, image
ingest and render, metadata standardisation and the fused model, multiclass members,
ensemble and scores, and one Snakemake run through the ensemble with all three kinds of
model (metadata-only LightGBM, image-only CNN, CNN fused with metadata)."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from spectrovision.ensemble.baselines import Prior
from spectrovision.ensemble.members import cross_fit
from spectrovision.config.schema import load_schema
from spectrovision.ensemble.build import build_ensemble
from spectrovision.ensemble.combine import combine_logits
from spectrovision.ensemble.gather import gather_member
from spectrovision.ensemble.selection import score_members
from spectrovision.errors import ConfigError, InputError
from spectrovision.data.images import ingest_image, ingest_image_shard, summarize_image_qc
from spectrovision.data.layouts import IMAGE_ONLY_KEYS, representation_settings
from spectrovision.render.images import ImageSpec, render_image, render_image_shard
from spectrovision.data.metadata import Standardizer, check_model_metadata, metadata_values
from spectrovision.metrics import softmax
from spectrovision.cli import main as cli_main
from spectrovision.synth.particles import (CLASSES, CONFUSABLE_CLASSES, METADATA_COLUMNS,
                                           draw_particle, generate_particle_dataset)
from spectrovision.learn.predict import run_predict
from spectrovision.ensemble.submission import probabilities
from spectrovision.ensemble.tabular import GBMSettings, fit_tabular, metadata_features
from spectrovision.learn.checkpoint import load_trained
from spectrovision.learn.settings import ModelSettings
from spectrovision.learn.train import fold_metadata, run_train
from support import derived_config, image_spec, run_snakemake, write_config

REPO = Path(__file__).resolve().parents[1]
CLIP = 1e-4


@pytest.fixture(scope="module")
def particles(tmp_path_factory) -> Path:
    return generate_particle_dataset(tmp_path_factory.mktemp("particles"), n_images=60,
                                     seed=1, size=32)


def sheet_of(root: Path) -> pd.DataFrame:
    meta = pd.read_csv(root / "metadata.csv", dtype={"sample_id": str})
    labels = pd.read_csv(root / "train_labels.csv", dtype={"sample_id": str})
    return meta.merge(labels, on="sample_id", how="left")


# --- generator -------------------------------------------------------------------------------

def test_generator_balances_classes_varies_sizes_and_formats(particles):
    table = sheet_of(particles)
    assert table["split"].value_counts().to_dict() == {"train": 50, "test": 10}
    labelled = table[table["split"] == "train"]
    counts = labelled[list(CLASSES)].sum()
    assert set(counts) == {10} and (labelled[list(CLASSES)].sum(axis=1) == 1).all()
    sizes, kinds = set(), set()
    for rel in table["features_path"]:
        with Image.open(particles / rel) as picture:
            sizes.add(picture.size)
            kinds.add((picture.format, picture.mode))
    assert len(sizes) > 20, "image sizes vary so the resize path is exercised"
    assert {("PNG", "L"), ("PNG", "RGB"), ("TIFF", "L"), ("TIFF", "I;16")} <= kinds
    template = pd.read_csv(particles / "submission_format.csv")
    assert list(template.columns) == ["sample_id", *CLASSES] and len(template) == 10


def test_generator_metadata_is_class_dependent(tmp_path):
    root = generate_particle_dataset(tmp_path, n_images=150, seed=0, size=32)
    table = sheet_of(root)
    table = table[table["split"] == "train"]
    table["cls"] = table[list(CLASSES)].idxmax(axis=1)
    means = table.groupby("cls")[list(METADATA_COLUMNS)].mean()
    assert means.loc["fibre", "aspect_ratio"] > 2 * means.loc["sphere", "aspect_ratio"]
    assert means.loc["sphere", "circularity"] > means.loc["fibre", "circularity"] + 0.3
    assert means.loc["aggregate", "area_um2"] > 2 * means.loc["sphere", "area_um2"]
    spread = means["depth_m"].max() - means["depth_m"].min()
    assert spread < 0.5 * table["depth_m"].std() * 2, "depth_m is the uninformative column"


def test_generator_is_deterministic(tmp_path):
    a = generate_particle_dataset(tmp_path / "a", n_images=12, seed=5, size=24)
    b = generate_particle_dataset(tmp_path / "b", n_images=12, seed=5, size=24)
    c = generate_particle_dataset(tmp_path / "c", n_images=12, seed=6, size=24)
    assert (a / "metadata.csv").read_bytes() == (b / "metadata.csv").read_bytes()
    assert (a / "metadata.csv").read_bytes() != (c / "metadata.csv").read_bytes()


# md5 of every file of `spectrovision particles-data --n-images 20 --seed 3 --size 16`, as
# written by main's code (commit cf30cec) before --classes, --test-fraction and
# --heldout-labels came: the default 5-class set must stay byte-identical (the image bytes
# come from the locked Pillow's PNG/TIFF encoders)
DEFAULT_SET_MD5 = {
    "images/P0000.png": "0a2c590a923957f1f375750107f1d28d",
    "images/P0001.png": "c29d87ba73ea647983e7c8b418a0d09c",
    "images/P0002.png": "10230d922fee8a82527c5e4a4f938a29",
    "images/P0003.tif": "8d5d5a0fd4e1b3ad7c3643d15e5eef52",
    "images/P0004.png": "ba7cccf340fa8f8b8441daadca90cf0a",
    "images/P0005.png": "72623e00f478e0014acad9801efe8ad7",
    "images/P0006.png": "25519e453cb320373910d754539ce827",
    "images/P0007.tif": "054c3f0d5653cb7dd9e0285df93d8cf1",
    "images/P0008.png": "94aea43d939f4fd50d74c02e0d8b6338",
    "images/P0009.png": "991a25796babc68e595ad9c1015d294f",
    "images/P0010.png": "e1821b58cc7b765f742c517a4d7ee84f",
    "images/P0011.png": "ef581cfc605e8d586a73bc31577deff8",
    "images/P0012.png": "edbbc684008510a5361e81373852db19",
    "images/P0013.tif": "8ec27460b4bf411f7c8b2ac4f9f58539",
    "images/P0014.png": "60e321163286cf9dd98e3519028b0b7d",
    "images/P0015.png": "105dfe3409c12f07824c3b6e86c6a8c3",
    "images/P0016.png": "7e73269ec2768264ac1b20ba454660a2",
    "images/P0017.tif": "e601510f43590182b6bed85fc64b15ee",
    "images/P0018.png": "cd2a39afcd5147ac4b604a41b29abc77",
    "images/P0019.png": "234695d846ff5bf15465b43144799896",
    "metadata.csv": "5f75d5014f246dff876c784dfe5fa3df",
    "submission_format.csv": "4f195ee1b76cd5ad7d8b9f256328cbff",
    "train_labels.csv": "22952a8ce9be0091cc9070784eea84a3",
}


def file_md5s(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_default_five_class_set_is_byte_identical_to_before_the_ten_class_option(
        tmp_path):
    args = ["particles-data", "--n-images", "20", "--seed", "3", "--size", "16"]
    assert cli_main([*args, "--out", str(tmp_path / "cli")]) == 0
    assert file_md5s(tmp_path / "cli") == DEFAULT_SET_MD5
    # the defaults spelled out give the same bytes; --heldout-labels only adds its file
    assert cli_main([*args, "--out", str(tmp_path / "explicit"), "--classes", "5",
                     "--test-fraction", "0.2", "--heldout-labels"]) == 0
    explicit = file_md5s(tmp_path / "explicit")
    assert explicit.pop("heldout_labels.csv") and explicit == DEFAULT_SET_MD5
    api = generate_particle_dataset(tmp_path / "api", n_images=20, seed=3, size=16)
    assert file_md5s(api) == DEFAULT_SET_MD5


@pytest.fixture(scope="module")
def particles10(tmp_path_factory) -> Path:
    return generate_particle_dataset(tmp_path_factory.mktemp("particles10"), n_images=100,
                                     seed=2, size=24, n_classes=10, test_fraction=0.3,
                                     heldout_labels=True)


def test_ten_classes_are_balanced_and_heldout_labels_match_the_test_split(particles10):
    names = [*CLASSES, *CONFUSABLE_CLASSES]
    assert len(set(names)) == 10
    meta = pd.read_csv(particles10 / "metadata.csv", dtype={"sample_id": str})
    train = pd.read_csv(particles10 / "train_labels.csv", dtype={"sample_id": str})
    held = pd.read_csv(particles10 / "heldout_labels.csv", dtype={"sample_id": str})
    template = pd.read_csv(particles10 / "submission_format.csv", dtype={"sample_id": str})
    assert list(train.columns) == list(held.columns) == list(template.columns) == \
        ["sample_id", *names]
    assert np.allclose(template[names], 0.1)
    # 10 per class, 3 of each (0.3) held out: the test split is exactly the held-out rows
    assert set(train[names].sum()) == {7} and set(held[names].sum()) == {3}
    assert (held[names].sum(axis=1) == 1).all()
    test_ids = list(meta.loc[meta["split"] == "test", "sample_id"])
    assert list(held["sample_id"]) == list(template["sample_id"]) == test_ids
    assert not set(held["sample_id"]) & set(train["sample_id"])
    # the hidden class is the one drawn: a sphere is round, a fibre long, in the metadata
    # of the labelled images too (aspect_ratio is measured from the drawn mask)
    aspect = meta.set_index("sample_id")["aspect_ratio"]
    cls = held.set_index("sample_id")[names].idxmax(axis=1)
    assert aspect[cls.index[cls == "fibre"]].min() > aspect[cls.index[cls == "sphere"]].max()


def test_each_confusable_class_draws_near_its_partner_but_distinct():
    for new, near in zip(CONFUSABLE_CLASSES, CLASSES):
        same = [draw_particle(new, np.random.default_rng([4, k]), 48, 48) for k in range(6)]
        other = [draw_particle(near, np.random.default_rng([4, k]), 48, 48) for k in range(6)]
        assert all(m.sum() > 30 for m, _ in same), f"{new} draws a visible particle"
        assert not all(np.array_equal(a[0], b[0]) for a, b in zip(same, other)), new
        # same texture family: the mean brightness inside the particle stays near the partner's
        inside = np.mean([t[m].mean() for m, t in same])
        assert abs(inside - np.mean([t[m].mean() for m, t in other])) < 0.12, new
    with pytest.raises(ValueError, match="unknown particle class 'blob'.*grain"):
        draw_particle("blob", np.random.default_rng(0), 32, 32)


def metadata_only_accuracy(root: Path, names: list[str]) -> float:
    """4-fold accuracy of a logistic regression on the four class-dependent columns."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    table = sheet_of(root)
    table = table[table["split"] == "train"]
    x = np.column_stack([np.log(table["area_um2"]), np.log(table["aspect_ratio"]),
                         table["circularity"], table["mean_grey"]])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return float(cross_val_score(LogisticRegression(max_iter=1000), x,
                                 table[names].to_numpy().argmax(axis=1), cv=4).mean())


def test_ten_class_metadata_is_weak(tmp_path):
    """The 10-class set's columns overlap heavily: metadata alone classifies its particles
    about half the time (chance 0.1), the 5-class set's nearly always."""
    five = generate_particle_dataset(tmp_path / "5", n_images=300, seed=0, size=24)
    ten = generate_particle_dataset(tmp_path / "10", n_images=300, seed=0, size=24,
                                    n_classes=10)
    assert metadata_only_accuracy(five, list(CLASSES)) > 0.85
    assert 0.25 < metadata_only_accuracy(ten, [*CLASSES, *CONFUSABLE_CLASSES]) < 0.6


def test_bad_classes_and_test_fraction_are_refused_naming_the_choices(tmp_path, capsys):
    assert cli_main(["particles-data", "--out", str(tmp_path / "a"), "--classes", "7"]) == 2
    err = capsys.readouterr().err
    assert "--classes must be 5 or 10, got 7" in err
    assert not (tmp_path / "a").exists(), "nothing written"
    assert cli_main(["particles-data", "--out", str(tmp_path / "b"),
                     "--test-fraction", "1.5"]) == 2
    assert "--test-fraction must lie strictly between 0 and 1, got 1.5" in \
        capsys.readouterr().err
    with pytest.raises(ValueError, match="n_classes must be 5 or 10, got 3.*adds ellipsoid"):
        generate_particle_dataset(tmp_path / "c", n_images=10, n_classes=3)


def test_force_removes_a_previous_heldout_labels_file(tmp_path):
    out = tmp_path / "set"
    assert cli_main(["particles-data", "--out", str(out), "--n-images", "10", "--size", "16",
                     "--heldout-labels"]) == 0
    assert (out / "heldout_labels.csv").exists()
    assert cli_main(["particles-data", "--out", str(out), "--n-images", "10", "--size", "16",
                     "--force"]) == 0
    assert not (out / "heldout_labels.csv").exists(), "no stale labels of another set"


# --- ingest and render -------------------------------------------------------------------------

def test_ingest_decodes_every_format_and_checks_md5(particles):
    table = pd.read_csv(particles / "metadata.csv")
    for row in table.head(10).itertuples():
        pixels, record = ingest_image(particles / row.features_path, row.features_md5_hash)
        assert record["md5_ok"] is True
        assert pixels.ndim == 3 and pixels.shape[2] == record["channels"] in (1, 3)
        assert pixels.dtype == (np.uint16 if record["mode"] == "I;16" else np.uint8)
    row = table.iloc[0]
    with pytest.raises(InputError, match="md5 checksum mismatch"):
        ingest_image(particles / row.features_path, "0" * 32)


def test_render_resizes_scales_and_converts_channels():
    grey16 = np.full((40, 30, 1), 65535 // 2, dtype=np.uint16)
    image = render_image(grey16, image_spec((16, 24), channels=3, dtype="float32"))
    assert image.shape == (3, 16, 24) and image.dtype == np.float32
    assert np.allclose(image, 0.5, atol=1e-3), "16-bit scaled by 65535, grey repeated"
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red: luminance 0.299
    grey = render_image(rgb, image_spec((8, 8), channels=1, dtype="float32"))
    assert grey.shape == (1, 8, 8) and np.allclose(grey, 0.299, atol=1e-4)
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))[..., None]
    small = render_image(ramp, image_spec((16, 16), interpolation="box", dtype="float32"))[0]
    assert np.allclose(small[0], small[-1]) and np.all(np.diff(small[0]) > 0)
    assert abs(small.mean() - ramp.mean() / 255) < 0.01, "box filter keeps the mean"
    assert render_image(ramp, image_spec((16, 16))).dtype == np.float16


def test_float_tiff_pixels_out_of_range_are_clipped_and_counted(tmp_path):
    values = np.linspace(-0.5, 1.5, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    pixels, record = ingest_image(tmp_path / "f.tif")
    assert pixels.dtype == np.float32 and pixels.min() == 0.0 and pixels.max() == 1.0
    assert record["clipped_pixels"] == int(((values < 0) | (values > 1)).sum())


@pytest.mark.parametrize("damage", ["missing", "empty", "garbage", "truncated"])
def test_a_bad_image_is_an_input_error_naming_the_file(particles, tmp_path, damage):
    good = particles / pd.read_csv(particles / "metadata.csv")["features_path"].iloc[0]
    bad = tmp_path / "bad.png"
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "garbage":
        bad.write_bytes(b"this is not an image at all" * 10)
    elif damage == "truncated":
        bad.write_bytes(good.read_bytes()[:80])
    records = [{"sample_id": "X1", "features_path": str(bad), "md5": None}]
    qc_dir = tmp_path / "qc"
    qc_dir.mkdir()
    stale = [qc_dir / "qc_summary.md", qc_dir / "qc.parquet"]  # an earlier run's summary
    for path in stale:
        path.write_text("No findings")
    with pytest.raises(InputError) as info:
        ingest_image_shard(records, tmp_path / "runs", qc_dir / "shard0.parquet", True)
    assert str(bad) in str(info.value) and "Fix:" in str(info.value)
    assert not any(path.exists() for path in stale), "no summary of other data remains"


def test_ingest_and_render_shard_write_the_stack_contract(particles, tmp_path):
    table = pd.read_csv(particles / "metadata.csv").head(8)
    records = [{"sample_id": r.sample_id, "features_path": str(particles / r.features_path),
                "md5": r.features_md5_hash} for r in table.itertuples()]
    qc = ingest_image_shard(records, tmp_path / "runs", tmp_path / "qc.parquet", True)
    assert list(qc["sample_id"]) == list(table["sample_id"]) and qc["md5_ok"].all()
    _, summary = summarize_image_qc([tmp_path / "qc.parquet"])
    assert "8 images decoded" in summary
    written = render_image_shard(tmp_path / "runs", records, tmp_path / "render",
                                 image_spec((20, 28), channels=1))
    shapes = {np.load(p).shape for p in written}
    assert shapes == {(1, 20, 28)}


def test_representation_keys_split_by_layout_and_defaults_match_schema():
    schema = load_schema()
    props = schema["properties"]["representations"]["additionalProperties"]["properties"]
    defaults = {k: v["default"] for k, v in props.items()}
    assert ImageSpec.from_config(defaults) == image_spec()
    assert list(image_spec().image_size) == defaults["image_size"]
    images = representation_settings(defaults, "images")
    assert set(images) == {"image_size", "channels", "interpolation", "dtype"}
    runs = representation_settings(defaults, "mars2")
    assert not set(runs) & set(IMAGE_ONLY_KEYS) and "n_mass" in runs
    with pytest.raises(ConfigError):
        image_spec(channels=2)


# --- metadata --------------------------------------------------------------------------------

def test_standardisation_uses_the_training_fold_only():
    sheet = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "x": [1.0, 3.0, 1000.0, np.nan],
                          "y": [5.0, 5.0, -7.0, 2.0]})
    settings = ModelSettings.with_defaults({"name": "m", "representation": "r",
                                            "metadata_columns": ["x", "y"]})
    scaler, train_meta, val_meta = fold_metadata(sheet, settings, ["a", "b"], ["c", "d"])
    assert np.allclose(scaler.mean, [2.0, 5.0]) and np.allclose(scaler.std, [1.0, 1.0])
    assert torch.allclose(train_meta, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    assert val_meta[0, 0] == 998.0 and val_meta[1, 0] == 0.0, "missing = training mean"
    again = Standardizer.from_bundle(scaler.to_bundle())
    assert np.array_equal(again.transform([[2.0, 6.0]]), scaler.transform([[2.0, 6.0]]))
    image_only = ModelSettings.with_defaults({"name": "m", "representation": "r"})
    assert fold_metadata(sheet, image_only, ["a"], ["b"]) == (None, None, None)
    with pytest.raises(InputError, match="not a number"):
        metadata_values(sheet.assign(x=["1", "2", "three", "4"]), ["c"], ["x"])
    with pytest.raises(ConfigError, match="not in the sample sheet"):
        check_model_metadata("m", {"metadata_columns": ["z"]}, list(sheet.columns))


def _meta_toy(root: Path) -> dict:
    """Noise images; the class is readable only from metadata column ``m``."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    n, classes = 200, ["p", "q", "r"]
    ids = [f"S{i:03d}" for i in range(n)]
    y = np.eye(3)[np.arange(n) % 3]
    np.save(root / "stack_train.npy", rng.random((n, 1, 16, 16)).astype(np.float16))
    pd.DataFrame({"sample_id": ids}).to_csv(root / "stack_train.csv", index=False)
    pd.DataFrame({"sample_id": ids, "fold": np.arange(n) % 2}).to_csv(root / "folds.csv",
                                                                        index=False)
    sheet = pd.DataFrame({"sample_id": ids, "m": 100 + 50 * np.argmax(y, 1)
                          + rng.normal(0, 5, n), "noise": rng.normal(0, 1, n)})
    labels = pd.DataFrame(y, columns=classes, index=pd.Index(ids, name="sample_id"))
    return {"root": root, "sheet": sheet, "labels": labels, "classes": classes}


def test_the_fused_model_learns_from_metadata_and_predicts_with_its_statistics(tmp_path):
    toy = _meta_toy(tmp_path / "toy")
    root = toy["root"]
    settings = {"name": "fused", "backbone": "resnet10t", "head": "pool", "epochs": 6,
                "batch_size": 32, "lr": 3e-3, "warmup_epochs": 0, "time_resize": None,
                "amp": False, "channels_last": False, "seed": 1, "mixup_p": 0.2,
                "grad_clip": None,  # the code default these settings had (schema: 1.0)
                "keep_weights": "best_val"}  # the weights its thresholds were set on
    results = {}
    stack_inputs = {"stacks": [root / "stack_train.npy"],
                    "stack_ids": [root / "stack_train.csv"], "folds": root / "folds.csv"}
    for name, columns in (("image", []), ("fused", ["m", "noise"])):
        out = {k: str(tmp_path / name / f) for k, f in (("weights", "model.pt"),
               ("metrics", "metrics.json"), ("history", "history.csv"), ("curve", "c.png"))}
        typed = ModelSettings.with_defaults({"representation": "r", **settings,
                                             "metadata_columns": columns})
        results[name] = run_train(inputs=stack_inputs, outputs=out, settings=typed, fold=0,
                                  task="multiclass", label_table=toy["labels"],
                                  labels=toy["classes"], checkpoint=tmp_path / name / "ck.pt",
                                  metadata=toy["sheet"])
    # chance is ln 3 = 1.10; the image-only CNN can only memorise its noise
    assert results["fused"]["best_val_loss"] < min(0.95, results["image"]["best_val_loss"] - 0.1)
    model, bundle = load_trained(tmp_path / "fused" / "model.pt")
    train_rows = toy["sheet"][np.arange(200) % 2 == 1]
    assert bundle["n_meta"] == 2 and bundle["meta_columns"] == ["m", "noise"]
    assert np.allclose(bundle["meta_mean"], train_rows[["m", "noise"]].mean())
    outputs = {"oof": str(tmp_path / "oof.parquet"), "test": str(tmp_path / "test.parquet")}
    args = dict(inputs={**stack_inputs, "weights": tmp_path / "fused" / "model.pt"},
                outputs=outputs, fold=0, unlabelled=[],
                settings={"tta_n_widths": 1, "tta_step": 8, "batch_size": 32})
    run_predict(**args, metadata=toy["sheet"])
    oof = pd.read_parquet(outputs["oof"])
    truth = toy["labels"].loc[oof["sample_id"]].to_numpy().argmax(1)
    assert (oof[toy["classes"]].to_numpy().argmax(1) == truth).mean() > 0.6  # chance 1/3
    with pytest.raises(InputError, match="metadata"):
        run_predict(**args)


# --- multiclass members, ensemble and scores ---------------------------------------------------

def test_gather_averages_clipped_softmax_probabilities_as_log_probabilities():
    folds = pd.DataFrame({"sample_id": ["a", "b"], "fold": [0, 1]})
    oof = {0: pd.DataFrame({"sample_id": ["a"], "x": [2.0], "y": [0.0]}),
           1: pd.DataFrame({"sample_id": ["b"], "x": [0.0], "y": [1.0]})}
    test = {0: pd.DataFrame({"sample_id": ["t"], "x": [0.0], "y": [np.log(3.0)]}),
            1: pd.DataFrame({"sample_id": ["t"], "x": [np.log(3.0)], "y": [0.0]})}
    _, table = gather_member(oof, test, folds, ["x", "y"], 0.3, "multiclass")
    # fold 0: p = (0.25, 0.75) -> clipped (0.3, 0.7); fold 1: (0.7, 0.3); mean (0.5, 0.5)
    assert np.allclose(np.exp(table[["x", "y"]].to_numpy()), [[0.5, 0.5]])


def test_ensemble_averages_log_probabilities_then_renormalises():
    a = np.log(np.array([[0.7, 0.2, 0.1]]))
    b = np.log(np.array([[0.1, 0.2, 0.7]]))
    combined = combine_logits([a, b], 1e-6, task="multiclass")
    geo = np.sqrt(np.array([0.07, 0.04, 0.07]))
    assert np.allclose(np.exp(combined), geo / geo.sum())
    assert np.isclose(np.exp(combined).sum(), 1.0)


def test_scores_give_per_class_and_multiclass_log_loss_and_accuracy():
    y = np.eye(3)[[0, 0, 1, 2]]
    probs = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    scores = score_members({"m": np.log(probs)}, y, ["p", "q", "r"], CLIP, "multiclass")
    assert list(scores.columns) == ["member", "label", "log_loss", "accuracy"]
    rows = scores.set_index("label")
    expected = -np.log([0.8, 0.3, 0.5, 0.8])
    assert np.isclose(rows.loc["mean", "log_loss"], expected.mean())
    assert np.isclose(rows.loc["p", "log_loss"], expected[:2].mean())
    assert rows.loc["mean", "accuracy"] == 0.75 and rows.loc["p", "accuracy"] == 0.5


def test_multiclass_ensemble_selects_on_multiclass_log_loss():
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(90)]
    y = np.eye(3)[np.arange(90) % 3]
    labels = ["p", "q", "r"]
    table = pd.DataFrame(y, columns=labels, index=pd.Index(ids, name="sample_id"))

    def member(strength: float) -> pd.DataFrame:
        frame = pd.DataFrame(strength * y + rng.normal(0, 1, y.shape), columns=labels)
        frame.insert(0, "sample_id", ids)
        frame.insert(1, "fold", np.arange(90) % 2)
        return frame

    oof = {"good": member(3.0), "noise": member(0.0)}
    test = {m: t.drop(columns="fold").head(5) for m, t in oof.items()}
    result = build_ensemble(oof, test, table, labels, ["good", "noise"], "greedy",
                            task="multiclass")
    assert result.selection["members"] == ["good"]
    probs = probabilities(result.test, labels, "multiclass")
    assert np.allclose(probs[labels].sum(axis=1), 1.0)
    mean = result.scores[result.scores["label"] == "mean"].set_index("member")
    assert mean.loc["good", "accuracy"] > 0.8 > mean.loc["noise", "accuracy"]


def test_prior_and_metadata_only_gbm_are_multiclass_members():
    rng = np.random.default_rng(1)
    n = 120
    ids = [f"s{i}" for i in range(n)]
    cls = np.arange(n) % 3
    labels = ["p", "q", "r"]
    table = pd.DataFrame(np.eye(3)[cls], columns=labels, index=pd.Index(ids, name="sample_id"))
    folds = pd.DataFrame({"sample_id": ids[:100], "fold": np.arange(100) % 2})
    oof, test = cross_fit(Prior(), ids, table, folds, ids[100:], labels, CLIP,
                          "multiclass")
    assert np.allclose(np.exp(oof[labels].to_numpy()).sum(axis=1), 1.0)
    sheet = pd.DataFrame({"sample_id": ids, "m": cls + rng.normal(0, 0.2, n)})
    gbm = fit_tabular(metadata_features(sheet, ["m"]), ids, table, folds, ids[100:], labels,
                      GBMSettings(n_estimators=30, learning_rate=0.05, num_leaves=15,
                                  min_child_samples=5, feature_fraction=0.8, seed=1,
                                  early_stopping_rounds=None, validation_fraction=0.2,
                                  prior_fallback=True, n_seeds=1,
                                  num_threads=1), CLIP,
                      "multiclass")
    scores = score_members({"prior": oof[labels].to_numpy(),
                            "gbm": gbm.oof.set_index("sample_id").loc[oof["sample_id"],
                                                                      labels].to_numpy()},
                           table.loc[oof["sample_id"]].to_numpy(), labels, CLIP, "multiclass")
    mean = scores[scores["label"] == "mean"].set_index("member")["log_loss"]
    assert mean["gbm"] < 0.5 * mean["prior"]
    assert list(gbm.importance["feature"]) == ["m"] and gbm.importance["mean_abs_shap"][0] > 0
    assert np.allclose(softmax(gbm.test[labels].to_numpy()).sum(axis=1), 1.0)


# --- the workflow ------------------------------------------------------------------------------

def particles_config(data: Path) -> dict:
    meta = list(METADATA_COLUMNS)
    config = derived_config({
        "results": "results", "seed": 3,
        "data": {"dir": str(data)},
        "workflow": {"shards": 2, "train_threads": 1},
        "representations": {"grey32": {"image_size": [32, 32], "channels": 1}},
        "folds": {"n_folds": 2, "seed": 3},
        "predict": {"tta_n_widths": 1, "batch_size": 32},
        "model_defaults": {"epochs": 2, "batch_size": 16, "warmup_epochs": 0,
                           "amp": False, "channels_last": False},
    }, base=REPO / "config" / "particles.yaml")
    for model in config["models"].values():
        model["representation"] = "grey32"
    config["tabular"]["gbm_meta"]["n_estimators"] = 50
    assert config["models"]["cnn_meta"]["metadata_columns"] == meta
    props = load_schema()["properties"]
    for stage in ("explain", "embed", "novelty"):  # analysis stages, when present: off
        if stage in props:
            config[stage] = {"enabled": False}
    return config


@pytest.mark.slow
@pytest.mark.timeout(2400)  # the whole particle workflow
def test_the_particle_demo_trains_all_three_model_kinds(particles, tmp_path):
    write_config(tmp_path / "config.yaml", particles_config(particles))
    run_snakemake(tmp_path, extra=("--quiet", "all"))
    results = tmp_path / "results"
    scores = pd.read_csv(results / "ensemble" / "scores.csv")
    mean = scores[scores["label"] == "mean"].set_index("member")
    assert {"cnn", "cnn_meta", "gbm_meta", "prior", "ensemble"} <= set(mean.index)
    assert mean[["log_loss", "accuracy"]].notna().all().all()
    assert mean.loc["gbm_meta", "log_loss"] < mean.loc["prior", "log_loss"] - 0.3
    assert mean.loc["gbm_meta", "accuracy"] > 0.5
    for cnn in ("cnn", "cnn_meta"):  # 2 epochs on 25 images per fold, precise_bn on
        assert mean.loc[cnn, "log_loss"] < mean.loc["prior", "log_loss"]
    assert set(scores["label"]) == {"mean", *CLASSES}
    _, bundle = load_trained(results / "models" / "cnn_meta" / "fold0" / "model.pt")
    assert bundle["n_meta"] == len(METADATA_COLUMNS) and bundle["image_shape"] == (1, 32, 32)
    _, plain = load_trained(results / "models" / "cnn" / "fold0" / "model.pt")
    assert plain["n_meta"] == 0
    submission = pd.read_csv(results / "submission.csv")
    template = pd.read_csv(particles / "submission_format.csv")
    assert list(submission.columns) == list(template.columns)
    assert list(submission["sample_id"]) == list(template["sample_id"])
    assert np.allclose(submission[list(CLASSES)].sum(axis=1), 1.0, atol=1e-3)
    assert "60 images decoded" in (results / "qc" / "qc_summary.md").read_text()
    stack = np.load(results / "render" / "grey32" / "stack_train.npy", mmap_mode="r")
    assert stack.shape == (50, 1, 32, 32) and stack.dtype == np.float16


def test_precise_bn_recalibrates_running_statistics_without_random_numbers():
    from spectrovision.learn.loop import recalibrate_batch_norm
    from spectrovision.learn.models import create_model

    torch.manual_seed(0)
    model = create_model(ModelSettings.with_defaults(
        {"name": "m", "representation": "r", "backbone": "resnet10t", "head": "pool",
         "drop_rate": 0.5}), (1, 24, 24), 3)
    x = torch.rand(40, 1, 24, 24) * 3 + 1  # far from the initial running stats (0, 1)
    reference = copy.deepcopy(model).eval()  # batch statistics, dropout off
    for norm in reference.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.train()
    with torch.no_grad():
        train_mode = reference(x)
    model.eval()
    with torch.no_grad():
        before = model(x)
    rng = torch.get_rng_state()
    recalibrate_batch_norm(model, x, 24, 64, torch.device("cpu"), False)
    assert torch.equal(rng, torch.get_rng_state()) and not model.training
    with torch.no_grad():
        after = model(x)
    assert (after - train_mode).abs().max() < 0.1 * (before - train_mode).abs().max()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.momentum == 0.1 for m in norms)
