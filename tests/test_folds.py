"""Folds: multilabel iterative stratification (own code), multiclass, always-train samples,
the file-level entry point and the Snakemake rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectrovision.synth.demo import LABELS, load_spectra_library, plan_run, run_labels
from spectrovision.config.schema import validate_config
from spectrovision.data.sheet import (labelled_table, load_sample_sheet, read_labelled_sheet,
                                      write_labelled_sheet)
from spectrovision.data.folds import (imbalance, iterative_stratification, make_folds,
                                 refine_by_moves, write_folds)
from support import run_snakemake, write_config


@pytest.fixture(scope="module")
def demo_labels() -> pd.DataFrame:
    """240 label rows drawn as the demo generator draws them (dense, co-occurring labels)."""
    library = load_spectra_library()
    rows = [run_labels(plan_run(np.random.default_rng([11, i]), library, (20, 30)), library)
            for i in range(240)]
    return pd.DataFrame(rows, index=[f"S{i:04d}" for i in range(240)])[list(LABELS)]


def test_same_seed_same_folds_other_seed_other_folds(demo_labels):
    a = make_folds(demo_labels, 5, seed=1)
    assert a.equals(make_folds(demo_labels, 5, seed=1))
    assert (a != make_folds(demo_labels, 5, seed=2)).mean() > 0.3
    assert list(a.index) == list(demo_labels.index) and a.name == "fold"


@pytest.mark.parametrize("n_folds", [3, 5])
def test_each_label_positives_are_spread_evenly(demo_labels, n_folds):
    for seed in range(3):
        folds = make_folds(demo_labels, n_folds, seed)
        for label in demo_labels.columns:
            per_fold = demo_labels[label].groupby(folds).sum()
            ideal = demo_labels[label].sum() / n_folds
            assert len(per_fold) == n_folds
            assert (per_fold - ideal).abs().max() <= 1.0, (label, per_fold.tolist(), ideal)


@pytest.mark.parametrize("n_folds", [3, 5])
def test_fold_sizes_are_balanced(demo_labels, n_folds):
    sizes = make_folds(demo_labels, n_folds, seed=0).value_counts()
    assert sizes.max() - sizes.min() <= 2, sizes.to_dict()


def test_rare_label_lands_in_different_folds():
    labels = pd.DataFrame({"common": [1, 0] * 30, "rare": [0] * 57 + [1, 1, 1]},
                          index=[f"s{i}" for i in range(60)])
    folds = make_folds(labels, 3, seed=4)
    assert sorted(folds[labels["rare"] == 1]) == [0, 1, 2]


def test_refinement_never_worsens_the_greedy_split(demo_labels):
    matrix = demo_labels.to_numpy()
    for seed in range(4):
        greedy = iterative_stratification(matrix, 4, np.random.default_rng(seed))
        refined = refine_by_moves(matrix, greedy, 4)
        assert imbalance(matrix, refined, 4) <= imbalance(matrix, greedy, 4)


def test_always_train_samples_get_minus_one(demo_labels):
    always = set(demo_labels.index[:40])
    folds = make_folds(demo_labels, 4, seed=0, groups_always_train=always | {"unknown"})
    assert (folds[list(always)] == -1).all()
    rest = folds.drop(index=list(always))
    assert set(rest) == {0, 1, 2, 3}
    sizes = rest.value_counts()
    assert sizes.max() - sizes.min() <= 2


def test_multiclass_class_names_and_one_hot_are_stratified_on_the_class():
    rng = np.random.default_rng(0)
    classes = pd.Series(rng.choice(["ice", "dust", "ash", "pollen"], size=90,
                                   p=[0.5, 0.3, 0.15, 0.05]),
                        index=[f"p{i}" for i in range(90)], name="class")
    one_hot = pd.get_dummies(classes).astype(int)
    for table in (classes.to_frame(), one_hot):
        folds = make_folds(table, 3, seed=2)
        for cls in classes.unique():
            per_fold = folds[classes == cls].value_counts().reindex(range(3), fill_value=0)
            assert (per_fold - (classes == cls).sum() / 3).abs().max() <= 1.0


def test_bad_label_values_are_rejected():
    labels = pd.DataFrame({"a": [0, 1, 2, 0]}, index=list("wxyz"))
    with pytest.raises(ValueError, match="0 or 1"):
        make_folds(labels, 2, seed=0)
    with pytest.raises(ValueError, match="n_folds"):
        make_folds(labels.clip(upper=1), 1, seed=0)


def labelled_sheet(data_dir: Path, out: Path) -> Path:
    """The folds rule's input: the labelled samples of ``data_dir`` as labelled.parquet."""
    sheet = load_sample_sheet(validate_config({"data": {"layout": "mars2",
                                                        "dir": str(data_dir)}}))
    write_labelled_sheet(labelled_table(sheet), out)
    return out


def test_write_folds_val_in_folds_false_keeps_val_training(tiny_mars2, tmp_path):
    labelled = labelled_sheet(tiny_mars2, tmp_path / "labelled.parquet")
    out = tmp_path / "folds.csv"
    table = write_folds(labelled, LABELS, out, 2, 3, val_in_folds=False)
    meta = pd.read_csv(tiny_mars2 / "metadata.csv").set_index("sample_id")
    written = pd.read_csv(out)
    assert list(written.columns) == ["sample_id", "fold"]
    assert written.equals(table)
    split = meta.loc[written["sample_id"], "split"].to_numpy()
    assert (written.loc[split == "val", "fold"] == -1).all()
    assert set(written.loc[split == "train", "fold"]) == {0, 1}
    assert set(split) == {"train", "val"}  # every labelled sample, no test sample
    together = write_folds(labelled, LABELS, out, 2, 3)
    assert set(together["fold"]) == {0, 1}


def test_the_labelled_sheet_holds_labels_and_split_in_label_order(tiny_mars2, tmp_path):
    sheet = load_sample_sheet(validate_config({"data": {"layout": "mars2",
                                                        "dir": str(tiny_mars2)}}))
    table = labelled_table(sheet)
    labels, rows = read_labelled_sheet(
        labelled_sheet(tiny_mars2, tmp_path / "labelled.parquet"), LABELS)
    expected = sheet.attrs["label_table"]
    assert labels.equals(expected.astype(labels.dtypes.to_dict()))
    assert list(rows.columns) == ["sample_id", "split", "derivatized"]
    assert set(rows["split"]) == {"train", "val"}
    # plain values: the rule param compares equal across parses
    assert table == labelled_table(load_sample_sheet(validate_config(
        {"data": {"layout": "mars2", "dir": str(tiny_mars2)}})))


def test_folds_rule_writes_the_library_folds_and_reruns_on_seed_change(tiny_config, tmp_path):
    target = Path(tiny_config["results"]) / "folds.csv"
    data = Path(tiny_config["data"]["dir"])

    def run(folds_seed: int | None, global_seed: int) -> str:
        cfg = dict(tiny_config, seed=global_seed,
                   folds={**tiny_config["folds"], "seed": folds_seed})
        config = write_config(tmp_path / "config.yaml", cfg)
        return run_snakemake(tmp_path, str(target), config=config, cores=1).stderr

    labelled = labelled_sheet(data, tmp_path / "labelled.parquet")

    def library_folds(seed: int) -> pd.DataFrame:
        return write_folds(labelled, LABELS, tmp_path / "expected.csv", 2, seed, True)

    run(folds_seed=7, global_seed=1)
    assert pd.read_csv(target).equals(library_folds(7))
    assert Path(f"{target}.provenance.json").exists()
    log = run(folds_seed=None, global_seed=8)  # null = the global seed; params change re-runs
    assert "rule folds" in log or "Rule: folds" in log
    assert pd.read_csv(target).equals(library_folds(8))
    assert not library_folds(8).equals(library_folds(7))


def test_a_data_block_without_labels_files_takes_the_schemas_label_files(tiny_mars2):
    """sample_sheet fills a data block from the schema: labels_files defaults to
    [train_labels.csv, val_labels.csv], so the val split's labels are read too."""
    from spectrovision.config.schema import load_schema
    from spectrovision.data.sheet import sample_sheet

    default = load_schema()["properties"]["data"]["properties"]["labels_files"]["default"]
    assert default == ["train_labels.csv", "val_labels.csv"]
    sheet = sample_sheet({"layout": "mars2", "dir": str(tiny_mars2)})
    labelled = set(sheet.loc[sheet["labelled"], "split"])
    assert labelled == {"train", "val"}
    only_train = sample_sheet({"layout": "mars2", "dir": str(tiny_mars2),
                               "labels_files": ["train_labels.csv"]})
    assert set(only_train.loc[only_train["labelled"], "split"]) == {"train"}
