"""Rendering runs into images: every option, the shard and stack writers, and equality
with the independent pandas reference (bench/pandas_reference.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectrovision.config.schema import load_schema, representation_block
from spectrovision.errors import ConfigError, InputError
from spectrovision.data.ingest import ingest_run
from spectrovision.data.layouts import IMAGE_ONLY_KEYS, get_layout
from spectrovision.data.sheet import run_columns
from spectrovision.render.runs import RenderSpec, render_sample, render_shard, stack_split, stack_splits
from support import data_block, derived_config, dry_run, render_spec, run_snakemake, write_config

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _load_reference():
    spec = importlib.util.spec_from_file_location("pandas_reference",
                                                  REPO / "bench" / "pandas_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()


def spec_of(**kw) -> RenderSpec:
    base = dict(n_mass=6, n_x=4, log="none", dtype="float32")
    base.update(kw)
    return render_spec(**base)


def run_of(rows) -> dict[str, np.ndarray]:
    """rows: (time, mass, intensity) tuples."""
    t, m, i = zip(*rows)
    return {"time": np.array(t, np.float32), "mass": np.array(m, np.int16),
            "intensity": np.array(i, np.float32)}


def random_run(rng, n_scans=40, n_masses=30, temp=False) -> pd.DataFrame:
    times = np.sort(rng.uniform(0, 30, n_scans)).astype(np.float32)
    t = np.repeat(times, n_masses)
    m = np.tile(np.arange(n_masses), n_scans).astype(np.int16)
    keep = rng.random(t.size) < 0.7
    run = pd.DataFrame({"time": t[keep], "mass": m[keep],
                        "intensity": rng.integers(0, 5000, keep.sum()).astype(np.float32)})
    if temp:
        run["temp"] = (run["time"] * 20 + rng.normal(0, 3, len(run))).astype(np.float32)
    return run


# --- spec ---

def test_spec_defaults_match_the_config_schema():
    schema = load_schema()
    props = schema["properties"]["representations"]["additionalProperties"]["properties"]
    assert {k: v["default"] for k, v in props.items()
            if k not in IMAGE_ONLY_KEYS} == render_spec().__dict__  # image keys: test_images
    # no defaults of its own: built only from a validated representation, every key present
    with pytest.raises(TypeError):
        RenderSpec()  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=r"missing: build the RenderSpec from a validated"):
        RenderSpec.from_config({"n_x": 10, "log": "none"})


def test_a_schema_default_is_the_spec_default():
    schema = load_schema()
    props = schema["properties"]["representations"]["additionalProperties"]["properties"]
    props["n_x"]["default"], props["aggregation"]["default"] = 77, "max"
    block = representation_block({"log": "none"}, schema)
    spec = RenderSpec.from_config({k: v for k, v in block.items() if k not in IMAGE_ONLY_KEYS})
    assert (spec.n_x, spec.aggregation, spec.log) == (77, "max", "none")
    assert (render_spec().n_x, render_spec().aggregation) == (192, "sum")


@pytest.mark.parametrize("settings", [{"aggregation": "mean"}, {"log_floor": 0.0},
                                      {"n_mass": 0}, {"colour": "red"}])
def test_spec_rejects_bad_settings(settings):
    with pytest.raises(ConfigError):
        render_spec(**settings)  # the schema's enums and ranges


# --- geometry ---

def test_x_is_min_max_scaled_and_the_last_value_lands_in_the_last_bin():
    run = run_of([(10.0, 1, 1), (12.0, 1, 2), (14.0, 1, 4), (18.0, 1, 8)])
    image = render_sample(run, spec_of(), source="t")[0]
    # bins of width 2 over [10, 18]: 10->0, 12->1, 14->2, 18->3 (max in last bin)
    assert np.allclose(image[1], np.array([1, 2, 4, 8]) / 8)
    assert image.sum() == pytest.approx(15 / 8)


def test_masses_at_or_above_n_mass_are_ignored():
    run = run_of([(0, 2, 5), (1, 6, 100), (1, 300, 1000)])
    image = render_sample(run, spec_of())[0]
    assert image[2, 0] == 1.0 and image.sum() == 1.0


def test_a_single_time_value_does_not_divide_by_zero():
    run = run_of([(3.0, 1, 2), (3.0, 2, 4)])
    image = render_sample(run, spec_of(log="log1p1000"))[0]
    assert np.isfinite(image).all()
    assert image[2, 0] == pytest.approx(1.0) and image[1, 0] > 0 and image[:, 1:].sum() == 0


def test_an_all_zero_run_stays_zero_without_nan():
    run = run_of([(0, 1, 0), (1, 2, 0)])
    for log in ("log1p1000", "clipped_log10", "none"):
        for norm in ("none", "mass", "time"):
            image = render_sample(run, spec_of(log=log, normalization=norm))
            assert np.isfinite(image).all() and image.max() == 0


def test_an_empty_run_renders_as_zeros():
    empty = {"time": np.zeros(0, np.float32), "mass": np.zeros(0, np.int16),
             "intensity": np.zeros(0, np.float32)}
    image = render_sample(empty, spec_of(aggregation="max", log="clipped_log10"))
    assert image.shape == (1, 6, 4) and not image.any()


def test_temperature_axis_bins_by_temp_not_time():
    run = run_of([(0, 1, 1), (1, 1, 2), (2, 1, 4)])
    run["temp"] = np.array([100, 500, 90], np.float32)  # temp not monotone in time
    by_temp = render_sample(run, spec_of(x_axis="temp"))[0]
    by_time = render_sample(run, spec_of())[0]
    # 90 and 100 share bin 0 (1 + 4), 500 is in the last bin (2)
    assert by_temp[1, 0] == 1.0 and by_temp[1, 3] == pytest.approx(2 / 5)
    assert by_time[1, 3] == 1.0
    with pytest.raises(InputError, match="temp"):
        render_sample(run_of([(0, 1, 1)]), spec_of(x_axis="temp"))


# --- values ---

def test_sum_and_max_aggregation_of_two_scans_in_one_cell():
    run = run_of([(0.0, 1, 3), (0.1, 1, 5), (4.0, 2, 16)])
    summed = render_sample(run, spec_of(aggregation="sum"))[0]
    maxed = render_sample(run, spec_of(aggregation="max"))[0]
    assert summed[1, 0] == 8 / 16 and maxed[1, 0] == 5 / 16


def test_max_aggregation_keeps_negative_cells_and_empty_cells_zero():
    run = run_of([(0, 1, -3), (0, 1, -5), (1, 2, 4)])
    image = render_sample(run, spec_of(aggregation="max"))[0]
    assert image[1, 0] == -3 / 4 and image[0].sum() == 0


def test_background_subtraction_removes_a_constant_per_mass_offset():
    rng = np.random.default_rng(1)
    run = random_run(rng)
    run = run[run["intensity"] > 0]
    offset = pd.Series(rng.uniform(100, 1000, 30))[run["mass"].to_numpy()].to_numpy()
    lifted = run.assign(intensity=(run["intensity"] + offset).astype(np.float32))
    base = run.assign(intensity=run["intensity"] - run.groupby("mass")["intensity"].transform("min"))
    spec = spec_of(n_mass=32, n_x=8, background_subtraction=True)
    expected = render_sample(base, spec_of(n_mass=32, n_x=8))
    assert np.allclose(render_sample(lifted, spec), expected, atol=1e-5)
    assert not np.allclose(render_sample(lifted, spec_of(n_mass=32, n_x=8)), expected, atol=1e-2)


# --- Mars-1 winner's options: fixed windows, mass scaling, background quantile ---

def test_x_window_puts_one_temperature_in_one_column_whatever_the_run_range():
    spec = spec_of(x_axis="temp", x_window=[0, 1000], x_step=100, n_x=4)
    assert spec.n_x == 10 and spec.shape == (1, 6, 10)  # n_x derived, the key ignored
    assert get_layout("mars1").image_shape(
        {**render_spec().__dict__, "x_axis": "temp", "x_window": [0, 1000], "x_step": 100,
         "n_mass": 6}) == (1, 6, 10)
    peaks = {}
    for lo, hi in ((0, 600), (100, 1000)):
        temp = np.linspace(lo, hi, 10).tolist() + [500.0]
        run = run_of([(i, 3, 1.0) for i in range(10)] + [(10, 3, 50.0)])
        run["temp"] = np.array(temp, np.float32)
        fixed = render_sample(run, spec)[0]
        minmax = render_sample(run, spec_of(x_axis="temp", n_x=10))[0]
        peaks[lo] = int(fixed[3].argmax()), int(minmax[3].argmax())
        reached = np.flatnonzero(fixed[3])
        assert reached.min() == lo // 100 and reached.max() == min(hi // 100, 9)
        assert not fixed[3, :lo // 100].any()  # columns the run does not reach stay empty
    assert peaks[0][0] == peaks[100][0] == 5  # 500 degC -> column floor(500 / 100)
    assert peaks[0][1] != peaks[100][1]  # min-max scaling moves it


def test_x_window_drops_scans_outside_and_puts_hi_in_the_last_column():
    run = run_of([(-1.0, 1, 7), (0.0, 1, 1), (2.5, 1, 2), (10.0, 1, 4), (10.5, 1, 9)])
    image = render_sample(run, spec_of(x_window=[0, 10], x_step=2.5))[0]
    assert np.allclose(image[1], np.array([1, 2, 0, 4]) / 4)


@pytest.mark.parametrize("settings, key", [({"x_window": [0, 10]}, "x_step"),
                                           ({"x_step": 1}, "x_window"),
                                           ({"x_window": [0, 10], "x_step": 3}, "x_step"),
                                           ({"x_window": [5, 5], "x_step": 1}, "x_window"),
                                           ({"mass_window": [5, 2]}, "mass_window"),
                                           ({"mass_scale": {"4": -1}}, "mass_scale"),
                                           ({"background_quantile": 1.5}, "background_quantile")])
def test_window_and_scale_keys_reject_bad_values_naming_the_key(settings, key):
    with pytest.raises(ConfigError, match=key):
        render_spec(**settings)


def test_mass_window_rows_are_m_z_lo_to_hi():
    run = run_of([(0, 3, 1), (1, 10, 2), (2, 12, 4), (3, 20, 8)])
    spec = spec_of(mass_window=[10, 12], n_mass=99)
    image = render_sample(run, spec)[0]
    assert spec.shape == (1, 3, 4) and image.shape == (3, 4)
    assert image[0, 1] == 0.5 and image[2, 2] == 1.0 and image.sum() == 1.5  # 3, 20 dropped
    assert render_sample(run, spec_of(n_mass=21))[0][20, 3] == 1.0


def test_mass_scale_scales_only_its_row():
    run = run_of([(0, 4, 8.0), (1, 4, 6.0), (2, 5, 10.0), (3, 2, 5.0)])
    plain = render_sample(run, spec_of())[0]
    spec = spec_of(mass_scale={"4": 0.1, "40": 3.0})  # config keys are strings; 40 no row
    assert spec == spec_of(mass_scale={4: 0.1, 40: 3})
    scaled = render_sample(run, spec)[0]
    assert np.allclose(scaled[4], plain[4] * 0.1) and np.array_equal(np.delete(scaled, 4, 0),
                                                                     np.delete(plain, 4, 0))
    assert scaled[4, 0] == pytest.approx(0.08)


def test_background_quantile_removes_a_constant_floor_per_row():
    floors = {1: 100.0, 2: 50.0}
    peaks = {1: (2, 1000.0), 2: (0, 300.0)}
    rows = [(t, m, floors[m] + (peaks[m][1] if t == peaks[m][0] else 0.0))
            for t in range(4) for m in (1, 2)] + [(3, 5, 0.0)]
    image = render_sample(run_of(rows), spec_of(background_quantile=0.05))[0]
    expected = np.zeros((6, 4))
    expected[1, 2], expected[2, 0] = 1.0, 0.3
    assert np.allclose(image, expected)
    assert image[1, 0] == 0 and not np.allclose(render_sample(run_of(rows), spec_of())[0],
                                                expected)
    # the quantile is over the row's non-empty cells: an unscanned column does not pull it to 0
    sparse = [r for r in rows if not (r[0] == 3 and r[1] == 1)]
    assert np.allclose(render_sample(run_of(sparse), spec_of(background_quantile=0.05))[0],
                       expected)


def test_winners_scaling_is_divide_by_max_clip_at_floor_log10():
    run = run_of([(0, 1, 1e-6), (1, 1, 3e-3), (2, 1, 0.5), (3, 1, 2.0)])
    image = render_sample(run, spec_of(log="clipped_log10", log_floor=1e-4))[0]
    winner = np.log10(np.maximum(np.array([1e-6, 3e-3, 0.5, 2.0]) / 2.0, 1e-4))
    assert np.allclose(image[1], (winner + 4) / 4)


def test_fractional_band_at_ingest_drops_44_5_and_keeps_44_2_as_row_44(tmp_path):
    path = tmp_path / "S0001.csv"
    path.write_text("time,mass,intensity\n0.1,44.2,10\n0.2,44.5,99\n0.3,45.0,5\n"
                    "0.4,28.71,2\n")
    columns = run_columns(data_block(layout="mars2"))
    banded, record = ingest_run(path, columns, {"fractional_mass": "drop_band",
                                                "fractional_band": [0.3, 0.7]})
    rounded, _ = ingest_run(path, columns, {})
    assert banded["mass"].tolist() == [44, 45, 29] and rounded["mass"].tolist() == [44, 44, 45, 29]
    assert (record["fractional_mass"], record["n_rows"], record["dropped_mass"]) == (3, 3, 0)
    image = render_sample(banded, spec_of(n_mass=50, n_x=1))[0]
    assert image[44, 0] == 1.0 and image[45, 0] == 0.5  # 44.2 -> row 44, 44.5 gone
    assert render_sample(rounded, spec_of(n_mass=50, n_x=1))[0][45, 0] == pytest.approx(5 / 109)
    with pytest.raises(ConfigError, match="fractional_band"):
        ingest_run(path, columns, {"fractional_mass": "drop_band", "fractional_band": [0.7, 0.3]})


def test_image_is_scaled_to_max_one():
    image = render_sample(random_run(np.random.default_rng(2)), spec_of(n_mass=32, n_x=8))
    assert image.max() == pytest.approx(1.0)


@pytest.mark.parametrize("how, axis", [("mass", 1), ("time", 0)])
def test_normalization_makes_every_non_empty_row_or_column_max_one(how, axis):
    run = random_run(np.random.default_rng(3), n_masses=20)
    image = render_sample(run, spec_of(n_mass=32, n_x=8, normalization=how))[0]
    peaks = image.max(axis=axis)
    assert np.allclose(peaks[peaks > 0], 1.0)
    assert (peaks == 0).sum() == (12 if how == "mass" else 0)  # masses 20..31 are empty
    other = image.max(axis=1 - axis)
    assert not np.allclose(other[other > 0], 1.0)


def test_log_modes_map_zero_to_zero_and_one_to_one():
    run = run_of([(0, 1, 1e-6), (1, 1, 1e-2), (2, 1, 1.0), (3, 1, 0.0)])
    lin = render_sample(run, spec_of())[0, 1]
    l1p = render_sample(run, spec_of(log="log1p1000"))[0, 1]
    clip = render_sample(run, spec_of(log="clipped_log10", log_floor=1e-4))[0, 1]
    assert np.allclose(l1p, np.log10(1 + 1000 * lin) / np.log10(1001))
    assert np.allclose(clip, [0.0, 0.5, 1.0, 0.0])  # 1e-6 below the floor -> 0
    assert l1p[2] == pytest.approx(1.0) and l1p[3] == 0.0


# --- channels and dtype ---

def test_coordinate_channels_are_ramps_and_derivatized_channel_is_the_flag():
    spec = spec_of(coord_channels=True, derivatized_channel=True)
    image = render_sample(run_of([(0, 1, 1), (1, 2, 2)]), spec, derivatized=1)
    assert image.shape == spec.shape == (4, 6, 4)
    assert np.allclose(image[1], np.tile(np.linspace(0, 1, 4), (6, 1)))
    assert np.allclose(image[2], np.tile(np.linspace(0, 1, 6)[:, None], (1, 4)))
    assert (image[3] == 1).all()
    assert (render_sample(run_of([(0, 1, 1)]), spec, derivatized=0)[3] == 0).all()


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_dtype_is_honoured(dtype):
    assert render_sample(run_of([(0, 1, 1)]), spec_of(dtype=dtype)).dtype == np.dtype(dtype)


# --- reference equality ---

@pytest.mark.parametrize("seed, settings", [
    (0, {}),
    (1, {"background_subtraction": True, "normalization": "mass", "log": "log1p1000"}),
    (2, {"aggregation": "max", "normalization": "time", "log": "clipped_log10"}),
    (3, {"x_axis": "temp", "coord_channels": True, "derivatized_channel": True}),
])
def test_renders_match_the_pandas_reference_from_csv(tmp_path, seed, settings):
    rng = np.random.default_rng(seed)
    raw = random_run(rng, n_scans=60, n_masses=50, temp=True)
    raw["mass"] = raw["mass"] + rng.uniform(-0.3, 0.3, len(raw))  # fractional m/z
    csv = tmp_path / "run.csv"
    raw.to_csv(csv, index=False)
    spec = render_spec(n_mass=40, n_x=16, dtype="float32", **settings)
    cached = reference.clean_like_ingest(pd.read_csv(csv))
    mine = render_sample(cached, spec, derivatized=1)
    expected = reference.reference_from_csv(csv, spec, derivatized=1)
    assert mine.shape == expected.shape == spec.shape
    np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=1e-6)


# --- shard and stack ---

def write_runs(run_dir: Path, ids, rng):
    run_dir.mkdir(parents=True)
    for sid in ids:
        random_run(rng).to_parquet(run_dir / f"{sid}.parquet", index=False)


def test_render_shard_writes_one_npy_per_sample_equal_to_render_sample(tmp_path):
    rng = np.random.default_rng(4)
    write_runs(tmp_path / "runs", ["a", "b"], rng)
    spec = render_spec(n_mass=32, n_x=8, derivatized_channel=True)
    written = render_shard(tmp_path / "runs", [{"sample_id": "a", "derivatized": 1},
                                               {"sample_id": "b", "derivatized": None}],
                           tmp_path / "out", spec)
    assert [p.name for p in written] == ["a.npy", "b.npy"]
    a = np.load(tmp_path / "out" / "a.npy")
    expected = render_sample(pd.read_parquet(tmp_path / "runs" / "a.parquet"), spec, 1)
    assert a.dtype == np.float16 and np.array_equal(a, expected)
    assert (np.load(tmp_path / "out" / "b.npy")[1] == 0).all()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.npy", "b.npy"]


def test_render_shard_names_a_missing_run(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(InputError, match=r"ghost\.parquet.*re-run ingest"):
        render_shard(tmp_path / "runs", [{"sample_id": "ghost"}], tmp_path / "out", render_spec())


def test_stack_splits_are_memory_mappable_in_id_order(tmp_path):
    rng = np.random.default_rng(5)
    images = {}
    for shard, ids in ((0, ["s1", "s3"]), (1, ["s2"])):
        (tmp_path / f"shard{shard}").mkdir()
        for sid in ids:
            images[sid] = rng.random((2, 3, 4)).astype(np.float16)
            np.save(tmp_path / f"shard{shard}" / f"{sid}.npy", images[sid])
    outputs = {s: (tmp_path / f"stack_{s}.npy", tmp_path / f"stack_{s}.csv")
               for s in ("train", "test")}
    shapes = stack_splits({0: tmp_path / "shard0", 1: tmp_path / "shard1"},
                          {"train": [("s3", 0), ("s2", 1)], "test": [("s1", 0)]}, outputs)
    assert shapes == {"train": (2, 2, 3, 4), "test": (1, 2, 3, 4)}
    stack = np.load(outputs["train"][0], mmap_mode="r")
    assert isinstance(stack, np.memmap) and stack.dtype == np.float16
    assert np.array_equal(stack[0], images["s3"]) and np.array_equal(stack[1], images["s2"])
    assert list(pd.read_csv(outputs["train"][1])["sample_id"]) == ["s3", "s2"]


def test_stack_split_rejects_an_image_of_another_shape(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((1, 3, 4), np.float16))
    np.save(tmp_path / "b.npy", np.zeros((1, 3, 5), np.float16))
    with pytest.raises(InputError, match=r"b\.npy.*re-run the render rule"):
        stack_split([tmp_path / "a.npy", tmp_path / "b.npy"], ["a", "b"],
                    tmp_path / "s.npy", tmp_path / "s.csv")
    assert not (tmp_path / "s.npy").exists()


# --- real data ---

@pytest.mark.shared_data
def test_a_real_mars1_run_renders_like_the_reference_on_temperature():
    meta_path = SHARED_DATA / "mars1-subset" / "metadata.csv"
    if not meta_path.exists():
        pytest.skip("../shared/data is absent")
    meta = pd.read_csv(meta_path)
    raw = pd.read_csv(SHARED_DATA / "mars1-subset" / meta["features_path"].iloc[0])
    raw = raw.rename(columns={"m/z": "mass", "abundance": "intensity"})
    run = reference.clean_like_ingest(raw)
    spec = render_spec(x_axis="temp", n_mass=200, n_x=64, background_subtraction=True,
                      normalization="mass", dtype="float32")
    image = render_sample(run, spec)
    np.testing.assert_allclose(image, reference.reference_image(run, spec), rtol=1e-5, atol=1e-6)
    assert image.shape == (1, 200, 64) and image.max() == pytest.approx(1.0)


# --- workflow ---

def write_workflow_inputs(root: Path, rng) -> pd.DataFrame:
    """Tiny data folder + config with two representations, and the cached runs ingest
    would have written (shard folders of Parquet files)."""
    from spectrovision.data.sheet import sample_shards

    ids = [f"S{i:03d}" for i in range(7)]
    splits = ["train", "test", "train", "val", "train", "test", "train"]
    derivatized = [1, None, None, 1, 1, None, None]
    data = root / "data"
    data.mkdir()
    pd.DataFrame({"sample_id": ids, "split": splits, "derivatized": derivatized,
                  "features_path": [f"f/{s}.csv" for s in ids]}).to_csv(data / "metadata.csv",
                                                                        index=False)
    labelled = [s for s, split in zip(ids, splits) if split == "train"]
    pd.DataFrame({"sample_id": labelled, "x": [0, 1, 0, 1]}).to_csv(data / "train_labels.csv",
                                                                    index=False)
    config = derived_config({
        "data": {"dir": "data", "submission_format": None}, "workflow": {"shards": 3},
        "representations": {"a": {"n_mass": 32, "n_x": 8, "derivatized_channel": True},
                            "b": {"n_mass": 16, "n_x": 4, "log": "none"}},
        "models": {}, "baselines": [], "tabular": {}})
    write_config(root / "config.yaml", config)
    sheet = pd.DataFrame({"sample_id": ids, "split": splits,
                          "derivatized": [d or 0 for d in derivatized],
                          "shard": sample_shards(ids, [s in labelled for s in ids], 3)})
    for shard, group in sheet.groupby("shard"):
        write_runs(root / "results" / "runs" / f"shard{shard}", group["sample_id"], rng)
    return sheet


@pytest.mark.slow
def test_render_stage_runs_through_snakemake_and_reruns_only_the_edited_representation(
        tmp_path):
    sheet = write_workflow_inputs(tmp_path, np.random.default_rng(6))
    allowed = ("--allowed-rules", "render_shard", "stack_render")
    targets = [f"results/render/{rep}/stack_{split}.npy" for rep in "ab"
               for split in ("test", "train", "val")]
    run_snakemake(tmp_path, *targets, extra=allowed)

    spec = render_spec(n_mass=32, n_x=8, derivatized_channel=True)
    for split, group in sheet.groupby("split"):
        stack = np.load(tmp_path / "results/render/a" / f"stack_{split}.npy", mmap_mode="r")
        ids = list(pd.read_csv(tmp_path / "results/render/a" / f"stack_{split}.csv")["sample_id"])
        assert ids == list(group["sample_id"])  # sample-sheet order
        for row, (sid, shard, flag) in enumerate(group[["sample_id", "shard", "derivatized"]]
                                                 .itertuples(index=False)):
            run = pd.read_parquet(tmp_path / "results/runs" / f"shard{shard}" / f"{sid}.parquet")
            assert np.array_equal(stack[row], render_sample(run, spec, flag))
    assert np.load(tmp_path / "results/render/b/stack_train.npy").shape == (4, 1, 16, 4)
    assert (tmp_path / "results/render/a/stack_train.npy.provenance.json").exists()

    config = (tmp_path / "config.yaml").read_text().replace("n_x: 4", "n_x: 6")
    (tmp_path / "config.yaml").write_text(config)
    planned = dry_run(tmp_path, *targets, extra=allowed)
    rules = [rule for rule, _ in planned]
    n_shards = sheet["shard"].nunique()
    assert rules.count("render_shard") == n_shards, planned
    assert rules.count("stack_render") == sheet["split"].nunique(), planned  # one per split
    assert {w.get("rep") for _, w in planned} == {"b"}, planned
    assert all("shard" in w for rule, w in planned if rule == "render_shard"), planned


# --- normalised views as channels (issue 19, item 1) ---

def test_column_share_and_row_scaled_channels_follow_the_intensity_channel():
    # m/z 1 and 2 share column 0 (3:1); m/z 1 alone in column 2; column 1 empty
    run = run_of([(0.0, 1, 30.0), (0.0, 2, 10.0), (2.0, 1, 60.0), (3.0, 4, 15.0)])
    plain = render_sample(run, spec_of())
    spec = spec_of(norm_channels=["column_share", "row_scaled"], row_power=1.0,
                   coord_channels=True)
    image = render_sample(run, spec)
    assert spec.shape == image.shape == (1 + 2 + 2, 6, 4)
    np.testing.assert_allclose(image[0], plain[0])  # the intensity channel is unchanged
    share = image[1]
    np.testing.assert_allclose(share[[1, 2], 0], [0.75, 0.25])
    np.testing.assert_allclose(share[:, 2], [0, 1, 0, 0, 0, 0])  # m/z 1 alone
    assert not share[:, 1].any()  # an empty column stays 0
    np.testing.assert_allclose(share.sum(axis=0), [1, 0, 1, 1])
    # row_power 1: each row's share of its own total, then the channel's max = 1
    row = image[2]
    expected = np.zeros((6, 4))
    expected[1, [0, 2]] = [30 / 90, 60 / 90]
    expected[2, 0] = 1.0
    expected[4, 3] = 1.0
    np.testing.assert_allclose(row, expected, rtol=1e-6)
    np.testing.assert_allclose(image[3], plain_coord := render_sample(
        run, spec_of(coord_channels=True))[1])  # coordinates come after the views
    assert plain_coord.shape == (6, 4)


def test_row_power_zero_is_the_image_and_the_log_maps_every_view():
    run = run_of([(0.0, 1, 30.0), (1.0, 2, 10.0), (2.0, 1, 60.0), (3.0, 2, 1.0)])
    raw = render_sample(run, spec_of(norm_channels=["row_scaled"], row_power=0.0))
    np.testing.assert_allclose(raw[1], raw[0])  # (row sum)^0 = 1: the image itself
    logged = render_sample(run, spec_of(norm_channels=["column_share", "row_scaled"],
                                        log="clipped_log10", log_floor=1e-3))
    assert logged.shape[0] == 3 and logged.min() >= 0 and logged.max() <= 1
    # every non-empty column has a share of 1 for a single ion: log maps it to 1
    np.testing.assert_allclose(logged[1].max(axis=0), [1, 1, 1, 1])
    with pytest.raises(ConfigError, match="norm_channels"):
        render_spec(norm_channels=["column_max"])
