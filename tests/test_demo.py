"""The demo-data generator: Mars-2 layout, real md5s, realistic runs, learnable labels;
and the packaged EI spectra table with its attribution."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectrovision.synth import demo as demo
from spectrovision.synth.demo import (LABELS, RunPlan, acquire, generate_demo_dataset,
                                load_spectra_library, split_sizes_for)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MARS2_LABELS = ["aromatic", "hydrocarbon", "carboxylic_acid", "nitrogen_bearing_compound",
                "chlorine_bearing_compound", "sulfur_bearing_compound", "alcohol",
                "other_oxygen_bearing_compound", "mineral"]


def read_all_labels(root: Path) -> pd.DataFrame:
    return pd.concat([pd.read_csv(root / "train_labels.csv"),
                      pd.read_csv(root / "val_labels.csv")]).set_index("sample_id")


def test_layout_columns_and_label_order_are_mars2(tiny_mars2):
    meta = pd.read_csv(tiny_mars2 / "metadata.csv")
    assert list(meta.columns) == ["sample_id", "split", "derivatized", "features_path",
                                  "features_md5_hash"]
    for name in ("train_labels.csv", "val_labels.csv", "submission_format.csv"):
        assert list(pd.read_csv(tiny_mars2 / name).columns) == ["sample_id", *MARS2_LABELS]
    assert list(LABELS) == MARS2_LABELS
    run = pd.read_csv(tiny_mars2 / meta["features_path"].iloc[0])
    assert list(run.columns) == ["time", "mass", "intensity"]
    assert set(meta["derivatized"].dropna().unique()) == {1}
    assert (meta["features_path"] == meta["split"] + "_features/" + meta["sample_id"] + ".csv").all()


def test_md5_values_are_those_of_the_files(tiny_mars2):
    meta = pd.read_csv(tiny_mars2 / "metadata.csv")
    for path, md5 in zip(meta["features_path"], meta["features_md5_hash"]):
        assert hashlib.md5((tiny_mars2 / path).read_bytes()).hexdigest() == md5


def test_splits_labels_and_submission_template_agree(tiny_mars2):
    meta = pd.read_csv(tiny_mars2 / "metadata.csv").set_index("sample_id")
    assert meta["split"].value_counts().to_dict() == split_sizes_for(36)
    train = pd.read_csv(tiny_mars2 / "train_labels.csv")
    val = pd.read_csv(tiny_mars2 / "val_labels.csv")
    template = pd.read_csv(tiny_mars2 / "submission_format.csv")
    assert set(meta.loc[train["sample_id"], "split"]) == {"train"}
    assert set(meta.loc[val["sample_id"], "split"]) == {"val"}
    assert len(train) + len(val) == (meta["split"] != "test").sum()
    assert list(template["sample_id"]) == list(meta.index[meta["split"].isin(["val", "test"])])
    assert (template[MARS2_LABELS] == 0.5).all().all()
    assert train[MARS2_LABELS].isin([0, 1]).all().all()


def test_split_sizes_scale_mars2():
    assert split_sizes_for(1584) == {"train": 809, "val": 312, "test": 463}
    assert sum(split_sizes_for(200).values()) == 200
    with pytest.raises(ValueError, match="add up"):
        generate_demo_dataset(Path("unused"), n_runs=5, split_sizes={"train": 1, "test": 1})


def test_custom_split_sizes_are_respected(tmp_path):
    generate_demo_dataset(tmp_path, n_runs=5, split_sizes={"train": 3, "val": 0, "test": 2},
                          n_scans=(20, 24))
    meta = pd.read_csv(tmp_path / "metadata.csv")
    assert meta["split"].tolist() == ["train"] * 3 + ["test"] * 2
    assert pd.read_csv(tmp_path / "val_labels.csv").empty


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    kwargs = {"n_runs": 4, "n_scans": (20, 30)}
    a = generate_demo_dataset(tmp_path / "a", seed=5, **kwargs)
    b = generate_demo_dataset(tmp_path / "b", seed=5, **kwargs)
    c = generate_demo_dataset(tmp_path / "c", seed=6, **kwargs)
    for name in ("metadata.csv", "train_labels.csv", "submission_format.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    md5 = {p: pd.read_csv(p / "metadata.csv")["features_md5_hash"] for p in (a, c)}
    assert not (md5[a] == md5[c]).any()


def test_derivatized_and_mineral_only_runs_are_present(tiny_mars2):
    meta = pd.read_csv(tiny_mars2 / "metadata.csv")
    assert 0 < meta["derivatized"].notna().sum() < len(meta)
    labels = read_all_labels(tiny_mars2)
    mineral_only = (labels["mineral"] == 1) & (labels.drop(columns="mineral").sum(axis=1) == 0)
    assert mineral_only.any()


def test_runs_look_like_raw_instrument_files(tiny_mars2):
    meta = pd.read_csv(tiny_mars2 / "metadata.csv")
    for path in meta["features_path"].iloc[:6]:
        run = pd.read_csv(tiny_mars2 / path)
        assert run["time"].is_monotonic_increasing and run["time"].max() > 10  # minutes
        assert pd.api.types.is_integer_dtype(run["intensity"]) and (run["intensity"] > 0).all()
        offsets = run["mass"] - run["mass"].round()
        assert (offsets.abs() > 0.005).any() and (offsets.abs() < 0.3).all()
        helium = run[run["mass"].round() == 4]
        interval = helium["time"].diff().dropna()
        assert interval.max() < 1.01 * interval.min()  # one helium reading per scan
        assert helium["time"].iloc[0] == run["time"].iloc[0]
        assert run["time"].iloc[-1] - helium["time"].iloc[-1] < interval.min()
        others = run.loc[run["mass"].round() != 4, "intensity"]
        assert helium["intensity"].median() > 10 * others.median()


def test_column_bleed_rises_with_temperature(tiny_mars2):
    meta = pd.read_csv(tiny_mars2 / "metadata.csv")
    run = pd.read_csv(tiny_mars2 / meta["features_path"].iloc[0])
    bleed = run[run["mass"].round() == 207]
    early = bleed[bleed["time"] < run["time"].max() * 0.2]["intensity"]
    late = bleed[bleed["time"] > run["time"].max() * 0.8]["intensity"]
    assert late.median() > 5 * (early.median() if len(early) else 1)


def single_compound_run(record: int) -> pd.DataFrame:
    plan = RunPlan(derivatized=False, compounds=(record,), gases=(), ramp_rate=10.0, hold=2.0,
                   n_scans=300)
    return acquire(plan, load_spectra_library(), np.random.default_rng(1))


def test_base_ion_of_a_present_compound_rises_and_falls():
    library = load_spectra_library()
    busy = {18, 28, 32, 40, 44, 73, 207, 208, 209, 281, 282, 267, 191}
    record = next(i for i in range(len(library.accession))
                  if int(library.spectra[i].argmax()) not in busy and not library.derivatized[i]
                  and 100 < library.elution_mass[i] < 200)  # elutes mid-run
    base_ion = int(library.spectra[record].argmax())
    run = single_compound_run(record)
    scan_times = run.loc[run["mass"].round() == 4, "time"].to_numpy()  # helium: every scan
    ion = run[run["mass"].round() == base_ion]
    trace = np.zeros(len(scan_times))  # absent below the detector threshold = 0
    trace[np.searchsorted(scan_times, ion["time"], side="right") - 1] = ion["intensity"]
    apex = int(trace.argmax())
    assert trace[apex] > 1000
    near = scan_times[apex] - 1.0 <= scan_times
    near &= scan_times <= scan_times[apex] + 1.0
    before = trace[(scan_times < scan_times[apex]) & ~near]
    after = trace[(scan_times > scan_times[apex]) & ~near]
    assert len(before) > 10 and len(after) > 10  # elutes mid-run
    assert before.max() < 0.1 * trace[apex] and after.max() < 0.1 * trace[apex]
    assert (trace[near] > 0.1 * trace[apex]).sum() >= 3  # a chromatographic peak, not a spike


def test_every_label_has_positives_and_negatives_at_200_runs(tmp_path):
    root = generate_demo_dataset(tmp_path, n_runs=200, seed=3, n_scans=(20, 24))
    prevalence = read_all_labels(root).mean()
    assert (prevalence > 0.05).all() and (prevalence < 0.9).all(), prevalence.to_dict()


def test_labels_are_the_families_of_the_compounds_present():
    library = load_spectra_library()
    rng = np.random.default_rng(0)
    for _ in range(50):
        plan = demo.plan_run(rng, library, (20, 30))
        labels = demo.run_labels(plan, library)
        expected = np.zeros(len(LABELS) - 1, dtype=int)
        for record in plan.compounds:
            expected |= library.families[record]
            assert library.derivatized[record] == plan.derivatized
        assert [labels[n] for n in LABELS[:-1]] == expected.tolist()
        assert labels["mineral"] == int(bool(plan.gases))
        assert plan.compounds or plan.gases


def test_compound_key_joins_labelled_and_stereo_forms_of_one_compound():
    assert {demo.compound_key(n) for n in ("Malic acid-[1,2,3,4-13C4]", "DL-Malic acid",
                                           "D-(+)-Malic acid", "Malic acid")} == {"malic acid"}
    assert demo.compound_key("(2S)-2-Aminobutanoic acid") == "2-aminobutanoic acid"
    assert demo.compound_key("D4") == "d4"  # a siloxane, not a stereo prefix


def test_plan_run_draws_only_allowed_records():
    library = load_spectra_library()
    allowed = demo.heldout_records(library, 0.3, seed=5)
    assert 0.2 < allowed.mean() < 0.4
    rng = np.random.default_rng(1)
    for mask in (allowed, ~allowed):
        for _ in range(100):
            plan = demo.plan_run(rng, library, (20, 30), allowed=mask)
            assert all(mask[c] for c in plan.compounds)


def test_heldout_compounds_are_absent_from_every_labelled_run(tmp_path):
    root = generate_demo_dataset(tmp_path, n_runs=80, seed=2, n_scans=(20, 24),
                                 heldout_compounds=0.3)
    compounds = pd.read_csv(root / "run_compounds.csv", keep_default_na=False)
    runs = {split: set(";".join(group["compounds"]).split(";")) - {""}
            for split, group in compounds.groupby("split")}
    assert runs["test"] and runs["train"] | runs["val"]
    assert not runs["test"] & (runs["train"] | runs["val"])
    # and by the library: every test compound is a held-out one, every other one is not
    library = load_spectra_library()
    held = demo.heldout_records(library, 0.3, seed=2)
    keys = np.array([demo.compound_key(str(n)) for n in library.name])
    assert runs["test"] <= set(keys[held]) and not (runs["train"] | runs["val"]) & set(keys[held])
    # the test runs' labels go to heldout_labels.csv only, never to what a run reads
    meta = pd.read_csv(root / "metadata.csv")
    heldout = pd.read_csv(root / "heldout_labels.csv")
    assert list(heldout.columns) == ["sample_id", *LABELS]
    assert list(heldout["sample_id"]) == list(meta.loc[meta["split"] == "test", "sample_id"])
    assert not set(heldout["sample_id"]) & set(read_all_labels(root).index)


def test_demo_data_cli_holds_out_compounds(tmp_path, capsys):
    from spectrovision.cli import main

    assert main(["demo-data", "--out", str(tmp_path / "bad"), "--n-runs", "3",
                 "--heldout-compounds", "1.5"]) == 2
    assert main(["demo-data", "--out", str(tmp_path / "d"), "--n-runs", "6",
                 "--heldout-compounds", "0.3"]) == 0
    assert (tmp_path / "d" / "heldout_labels.csv").exists()
    assert "heldout_labels.csv" in capsys.readouterr().out
    assert main(["demo-data", "--out", str(tmp_path / "d"), "--n-runs", "6", "--force"]) == 0
    assert not (tmp_path / "d" / "heldout_labels.csv").exists()  # --force removes them
    # a bad fraction is refused before --force clears anything: the set stays whole
    assert main(["demo-data", "--out", str(tmp_path / "d"), "--n-runs", "6", "--force",
                 "--heldout-compounds", "0"]) == 2
    assert (tmp_path / "d" / "metadata.csv").exists()


# --- the packaged EI spectra table ---
def packaged_table() -> pd.DataFrame:
    with resources.files("spectrovision").joinpath("synth/ei_spectra.csv.gz").open("rb") as fh:
        return pd.read_csv(fh, compression="gzip")


def test_ei_table_is_compact_and_attributed():
    path = REPO / "src" / "spectrovision" / "synth" / "ei_spectra.csv.gz"
    assert path.stat().st_size < 1_000_000
    table = packaged_table()
    assert set(table["license"]) <= {"CC BY", "CC BY-SA"}
    assert table["accession"].str.startswith("MSBNK-").all() and table["accession"].is_unique
    assert table["contributor"].notna().all()
    attribution = (REPO / "src" / "spectrovision" / "synth" / "ATTRIBUTION.md").read_text()
    listed = {(m[0], m[1]): int(m[2]) for m in
              re.findall(r"^\| (\S+) \| (CC BY(?:-SA)?) \| (\d+) \|$", attribution, re.M)}
    assert listed == table.groupby(["contributor", "license"]).size().to_dict()


def test_ei_table_spectra_are_integer_normalised_and_cut():
    library = load_spectra_library()
    spectra = library.spectra
    assert np.allclose(spectra.max(axis=1), 999)
    assert not spectra[:, 251:].any()
    assert (spectra == np.rint(spectra)).all()
    nonzero = np.where(spectra > 0, spectra, np.inf).min(axis=1)
    assert (nonzero >= 4).all()  # 0.5% of 999, after rounding


def load_make_ei_table():
    spec = importlib.util.spec_from_file_location("make_ei_table",
                                                  REPO / "scripts" / "make_ei_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compact_peaks_rounds_sums_cuts_and_scales():
    make = load_make_ei_table()
    peaks = "40.9:100;41.2:100;99.6:0.9;120.0:50;300.0:999"  # < 0.5%, > 250 dropped
    assert make.compact_peaks(peaks) == "41:999;120:250"
    assert make.nominal_mass("C6H5Cl") == 112 and make.nominal_mass("C2H3Xx") is None


@pytest.mark.shared_data
def test_packaged_table_is_reproduced_from_the_shared_source():
    source = SHARED / "ei-spectra" / "massbank_ei_cc_by.csv"
    if not source.exists():
        pytest.skip("../shared/data is absent")
    rebuilt = load_make_ei_table().build_table(source)
    packaged = packaged_table()
    assert list(rebuilt["accession"]) == list(packaged["accession"])
    assert list(rebuilt["peaks"]) == list(packaged["peaks"])


def test_run_csv_bytes_are_the_bytes_np_savetxt_writes():
    """The run files' fast writer keeps the demo data byte for byte: the formats of
    np.savetxt (time %.4f, mass %.2f, intensity %d of a float: truncated), rounding ties,
    large and negative values, and a run without points (the header alone)."""
    rng = np.random.default_rng(3)
    n = 500
    run = pd.DataFrame({
        "time": np.r_[rng.random(n - 4) * 40, 0.00005, 1.23445, 2.5e-5, 12.0],
        "mass": np.r_[rng.integers(2, 500, n - 4) + rng.normal(0, 0.01, n - 4),
                      0.125, 57.005, -0.004, 1e6],
        "intensity": np.r_[rng.integers(0, 2**40, n - 4).astype(float), 3.99, -2.5, 0.0, 7],
    })

    def savetxt(frame: pd.DataFrame) -> bytes:
        import io
        buf = io.StringIO()
        buf.write("time,mass,intensity\n")
        np.savetxt(buf, np.column_stack([frame["time"], frame["mass"], frame["intensity"]]),
                   fmt=["%.4f", "%.2f", "%d"], delimiter=",")
        return buf.getvalue().encode()

    assert demo.run_csv_bytes(run) == savetxt(run)
    assert demo.run_csv_bytes(run.iloc[:0]) == savetxt(run.iloc[:0]) == b"time,mass,intensity\n"
