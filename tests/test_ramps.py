"""GC-MS oven programs (issue 12 item 7): the demo generator's ramp-rate and end-temperature
ranges, and the ramp-invariant pseudo-temperature axis ``x_axis: bleed``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectrovision.cli import main
from spectrovision.config import validate_config
from spectrovision.synth.demo import (BLEED_EFOLD, RAMP_RATE, T_END, T_START, RunPlan, acquire,
                                     generate_demo_dataset, load_spectra_library, plan_run)
from spectrovision.errors import ConfigError, InputError
from spectrovision.render.runs import RenderSpec, bleed_axis, isotonic_increasing, render_sample
from support import render_spec

# md5 over (relative path, bytes) of every file of generate_demo_dataset(n_runs=12, seed=0),
# taken with the generator as it was before the ramp options existed (commit 1be7f3d).
DEFAULT_12_RUNS_MD5 = "0be8f6daa630d81db78c4567f93f2cf2"
BLEED = {"x_axis": "bleed", "bleed_masses": [207, 281], "x_window": [0.0, 6.4], "x_step": 0.2}
BUSY = {18, 28, 32, 40, 44, 73, 207, 208, 209, 281, 282, 267, 191}  # background and bleed


def tree_md5(root: Path) -> str:
    digest = hashlib.md5()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_default_generator_writes_the_same_bytes_as_before(tmp_path):
    assert tree_md5(generate_demo_dataset(tmp_path / "a", n_runs=12, seed=0)) \
        == DEFAULT_12_RUNS_MD5
    explicit = generate_demo_dataset(tmp_path / "b", n_runs=12, seed=0, ramp_rate=RAMP_RATE,
                                     end_temp=None)
    assert tree_md5(explicit) == DEFAULT_12_RUNS_MD5


def test_demo_data_cli_passes_the_oven_ranges(tmp_path, capsys):
    assert main(["demo-data", "--out", str(tmp_path / "d"), "--n-runs", "3"]) == 0
    default = pd.read_csv(tmp_path / "d" / "metadata.csv")["features_md5_hash"]
    assert list(default) == list(pd.read_csv(
        generate_demo_dataset(tmp_path / "g", n_runs=3) / "metadata.csv")["features_md5_hash"])
    spans = {}
    for name, rate, end in (("slow", "4", "380"), ("fast", "25", "250")):
        out = tmp_path / name
        assert main(["demo-data", "--out", str(out), "--n-runs", "3", "--ramp-rate", rate, rate,
                     "--end-temp", end, end]) == 0
        meta = pd.read_csv(out / "metadata.csv")
        spans[name] = [pd.read_csv(out / p)["time"].max() for p in meta["features_path"]]
    # hold 1-3 min + (end - 40) / rate + 2: 88-90 min against 11-13 min
    assert min(spans["slow"]) > 85 and max(spans["fast"]) < 14


def test_ramp_and_end_temperature_ranges_are_drawn_per_run():
    library = load_spectra_library()
    plans = [plan_run(np.random.default_rng([3, i]), library, (20, 30), ramp_rate=(4.0, 25.0),
                      end_temp=(250.0, 380.0)) for i in range(200)]
    rates = np.array([p.ramp_rate for p in plans])
    ends = np.array([p.end_temp for p in plans])
    assert 4.0 <= rates.min() < 5.0 and 24.0 < rates.max() <= 25.0
    assert 250.0 <= ends.min() < 260.0 and 370.0 < ends.max() <= 380.0
    default = plan_run(np.random.default_rng([3, 0]), library, (20, 30))
    assert default.end_temp == T_END and RAMP_RATE[0] <= default.ramp_rate <= RAMP_RATE[1]


def compound_record(lo: float, hi: float) -> int:
    """An underivatized record whose base ion is no background or bleed ion and which
    elutes between lo and hi degC (45 + 0.8 * its elution mass)."""
    library = load_spectra_library()
    return next(i for i in range(len(library.accession))
                if int(library.spectra[i].argmax()) not in BUSY and not library.derivatized[i]
                and lo < 45.0 + 0.8 * library.elution_mass[i] < hi)


def one_compound_run(record: int, ramp_rate: float, end_temp: float, seed: int = 1
                     ) -> pd.DataFrame:
    """A run of one compound as ingest caches it (integer m/z)."""
    plan = RunPlan(derivatized=False, compounds=(record,), gases=(), ramp_rate=ramp_rate,
                   hold=2.0, n_scans=300, end_temp=end_temp)
    run = acquire(plan, load_spectra_library(), np.random.default_rng(seed))
    return run.assign(mass=run["mass"].round().astype(np.int16))


def apex(run: pd.DataFrame, mz: int) -> float:
    ion = run[run["mass"] == mz]
    return float(ion["time"].iloc[int(ion["intensity"].to_numpy().argmax())])


def test_a_compound_elutes_later_on_a_slower_ramp():
    record = compound_record(140.0, 200.0)
    base_ion = int(load_spectra_library().spectra[record].argmax())
    slow, fast = (one_compound_run(record, rate, T_END) for rate in (4.0, 25.0))
    # same draws, same elution temperature: t = hold + (T - T_START) / rate
    assert apex(slow, base_ion) > 4.0 * apex(fast, base_ion)
    hotter = one_compound_run(record, 10.0, 380.0)
    assert hotter["time"].max() > one_compound_run(record, 10.0, 250.0)["time"].max() + 12.0


def apex_column(run: pd.DataFrame, spec: RenderSpec, mz: int) -> int:
    image = render_sample(run, spec)[0].astype(np.float64)
    return int(image[mz].argmax())


def test_bleed_axis_puts_a_compound_in_the_same_column_whatever_the_ramp():
    record = compound_record(140.0, 200.0)
    base_ion = int(load_spectra_library().spectra[record].argmax())
    slow = one_compound_run(record, 4.0, 380.0)
    fast = one_compound_run(record, 25.0, 250.0)
    plain = render_spec(n_mass=256, n_x=32)
    bleed = render_spec(n_mass=256, **BLEED)
    assert bleed.n_x == 32
    time_cols = [apex_column(run, plain, base_ion) for run in (slow, fast)]
    bleed_cols = [apex_column(run, bleed, base_ion) for run in (slow, fast)]
    assert abs(time_cols[0] - time_cols[1]) >= 5  # the time axis stretches with the ramp
    assert abs(bleed_cols[0] - bleed_cols[1]) <= 1
    # and the column is the compound's elution temperature in e-folds of bleed
    temp = float(np.clip(45.0 + 0.8 * load_spectra_library().elution_mass[record], 50.0, 245.0))
    expected = (temp - T_START) / BLEED_EFOLD / 0.2
    assert all(abs(col - expected) <= 3 for col in bleed_cols)


def test_bleed_axis_tracks_the_oven_temperature():
    run = one_compound_run(compound_record(140.0, 200.0), 7.0, 330.0, seed=5)
    x = bleed_axis(run["time"].to_numpy(), run["mass"].to_numpy(),
                   run["intensity"].to_numpy(), (207, 281))
    time = run["time"].to_numpy()
    temp = np.clip(T_START + (time - 2.0) * 7.0, T_START, 330.0)
    assert np.all(np.diff(x[np.argsort(time, kind="stable")]) >= -1e-12)
    assert np.abs(x * BLEED_EFOLD - (temp - T_START)).max() < 15.0  # degC


def test_a_run_without_bleed_is_an_input_error_naming_the_file():
    run = one_compound_run(compound_record(140.0, 200.0), 10.0, T_END)
    flat = run[~run["mass"].isin([207, 281])]
    spec = render_spec(n_mass=256, **BLEED)
    with pytest.raises(InputError, match="runs/S0001.parquet.*bleed"):
        render_sample(flat, spec, source="runs/S0001.parquet")
    constant = run.assign(intensity=np.where(run["mass"].isin([207, 281]), 500,
                                             run["intensity"]))
    with pytest.raises(InputError, match="rises by"):
        render_sample(constant, spec, source="runs/S0001.parquet")


def test_bleed_keys_go_together_and_validate():
    with pytest.raises(ConfigError, match="bleed_masses"):
        render_spec(x_axis="bleed")
    with pytest.raises(ConfigError, match="bleed_masses"):
        render_spec(bleed_masses=[207])
    with pytest.raises(ConfigError, match="bleed_masses"):  # the schema: integers
        render_spec(x_axis="bleed", bleed_masses=[207.5])
    cfg = validate_config({"representations": {"b": dict(BLEED)}, "models": {}})
    rep = cfg["representations"]["b"]
    assert RenderSpec.from_config({k: v for k, v in rep.items()
                                   if k in RenderSpec.__dataclass_fields__}).bleed_masses \
        == (207, 281)
    assert validate_config({"representations": {"t": {}}, "models": {}}
                           )["representations"]["t"]["bleed_masses"] is None


def test_isotonic_fit_is_the_pooled_means():
    fit = isotonic_increasing(np.array([1.0, 3.0, 2.0, 4.0, 0.0]))
    assert np.allclose(fit, [1.0, 2.25, 2.25, 2.25, 2.25])  # (3 + 2 + 4 + 0) / 4


def test_one_time_bin_gives_coarse_members_the_same_features_whatever_the_ramp():
    # the baselines' features (benchmark_lr, logistic_l2 with time_bins: 1) are each m/z's
    # largest cell over the run: no retention time, so a 4 degC/min ramp to 380 degC and a
    # 25 degC/min ramp to 250 degC give nearly the same vector; 4 bins split them apart
    from spectrovision.ensemble.members import coarse_time_features

    record = compound_record(140.0, 200.0)
    runs = (one_compound_run(record, 4.0, 380.0), one_compound_run(record, 25.0, 250.0))
    spec = render_spec(n_mass=256, n_x=32, aggregation="sum", background_subtraction=True,
                      log="log1p1000")
    images = np.stack([render_sample(run, spec) for run in runs])
    corr = {bins: float(np.corrcoef(*coarse_time_features(images, bins))[0, 1])
            for bins in (1, 4)}
    assert corr[1] > 0.97 and corr[4] < 0.6, corr
