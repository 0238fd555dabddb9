"""Novelty: autoencoder reconstruction error ranks an out-of-distribution render first;
entropy and member disagreement on hand-made tables; the file-level entry point."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from spectrovision.errors import InputError
from spectrovision.analysis.novelty import (ConvAutoencoder, binary_entropy, gallery_figure,
                                   member_disagreement, mean_entropy, novelty_table,
                                   reconstruction_error, run_novelty, train_autoencoder)
from spectrovision.render.axes import render_axes
from spectrovision.render.runs import RenderSpec
from support import render_spec, windowed_render

LABELS = ["a", "b"]
# the (32, 24) renders as m/z 40-71 on a 0-24 min window (mars2's time unit)
AXES = render_axes(render_spec(mass_window=[40, 71], x_window=[0, 24], x_step=1), "min")


def peaky_images(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 2, 32, 24) renders like the toy data: faint noise, a few short mass peaks,
    a constant derivatized plane."""
    images = rng.random((n, 2, 32, 24)).astype(np.float32) * 0.1
    for image in images:
        for row in rng.choice(32, size=3, replace=False):
            start = int(rng.integers(0, 16))
            image[0, row, start:start + 6] += rng.uniform(0.5, 1.0)
    images[:, 1] = 1.0
    return images


def stripes(rng: np.random.Generator) -> np.ndarray:
    """An out-of-distribution render: vertical stripes across every mass."""
    image = peaky_images(rng, 1)[0]
    image[0, :, ::3] = 1.0
    return image


def test_autoencoder_keeps_the_shape_of_odd_sized_images():
    model = ConvAutoencoder(2)
    x = torch.rand(3, 2, 30, 21)
    assert model(x).shape == x.shape


def test_stripes_rank_first_by_reconstruction_error_and_training_is_seeded():
    rng = np.random.default_rng(0)
    train = torch.from_numpy(peaky_images(rng, 96))
    test = np.concatenate([peaky_images(rng, 9), stripes(rng)[None]])
    model = train_autoencoder(train, epochs=8, seed=1)
    errors = reconstruction_error(model, torch.from_numpy(test))
    assert errors.shape == (10,)
    assert int(np.argmax(errors)) == 9
    assert errors[9] > 2 * np.sort(errors)[-2]
    again = reconstruction_error(train_autoencoder(train, epochs=8, seed=1),
                                 torch.from_numpy(test))
    np.testing.assert_array_equal(errors, again)


def test_entropy_is_mean_binary_entropy_in_bits():
    logits = np.array([[0.0, 0.0], [np.log(3.0), -50.0]])  # p = .5,.5 ; .75, ~0
    h75 = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    np.testing.assert_allclose(mean_entropy(logits), [1.0, h75 / 2], atol=1e-9)
    np.testing.assert_allclose(binary_entropy(np.array([0.0, 1.0, 0.5])), [0, 0, 1], atol=1e-9)


def test_disagreement_is_member_std_of_probabilities_averaged_over_labels():
    # label a: members say .25 and .75 -> std .25; label b: both .5 -> 0
    m1 = np.array([[np.log(1 / 3), 0.0]])
    m2 = np.array([[np.log(3.0), 0.0]])
    np.testing.assert_allclose(member_disagreement([m1, m2]), [0.125], atol=1e-9)
    np.testing.assert_allclose(member_disagreement([m1]), [0.0])


def test_multiclass_entropy_and_disagreement_read_log_probabilities():
    """Multiclass member logits are log-probabilities: a uniform 4-class row has entropy 1
    (normalised), a certain one 0, where sigmoid of log-probabilities would say otherwise."""
    uniform = np.log(np.full((1, 4), 0.25))
    certain = np.log(np.array([[1 - 3e-9, 1e-9, 1e-9, 1e-9]]))
    both = np.vstack([uniform, certain])
    np.testing.assert_allclose(mean_entropy(both, "multiclass"), [1.0, 0.0], atol=1e-6)
    assert mean_entropy(both)[0] < 0.9  # the multilabel reading of the same numbers
    a = np.log(np.array([[0.5, 0.5, 1e-12]]))
    b = np.log(np.array([[1.0 - 2e-12, 1e-12, 1e-12]]))
    # class 0: .5 vs 1 -> std .25; class 1: .5 vs 0 -> .25; class 2: 0 -> mean 1/6
    np.testing.assert_allclose(member_disagreement([a, b], "multiclass"), [1 / 6], atol=1e-6)


def test_table_ranks_one_as_most_novel_and_sorts_by_recon():
    table = novelty_table(["x", "y", "z"], np.array([0.1, 0.3, 0.2]),
                          np.array([0.9, 0.1, 0.5]), np.array([0.0, 0.2, 0.1]))
    assert list(table["sample_id"]) == ["y", "z", "x"]
    assert list(table["rank_recon_error"]) == [1, 2, 3]
    assert table.set_index("sample_id")["rank_entropy"].to_dict() == {"x": 1, "z": 2, "y": 3}
    assert table.set_index("sample_id")["rank_disagreement"].to_dict() == {"y": 1, "z": 2,
                                                                          "x": 3}


def write_inputs(root, rng):
    train = peaky_images(rng, 48)
    test = np.concatenate([peaky_images(rng, 5), stripes(rng)[None]])
    train_ids = [f"T{i:02d}" for i in range(48)]
    test_ids = [f"X{i}" for i in range(6)]
    for split, images, ids in (("train", train, train_ids), ("test", test, test_ids)):
        np.save(root / f"stack_{split}.npy", images.astype(np.float16))
        pd.DataFrame({"sample_id": ids}).to_csv(root / f"stack_{split}.csv", index=False)
    members = {}
    for name, scale in (("m1", 1.0), ("m2", -1.0)):
        logits = pd.DataFrame(rng.normal(0, 2, (6, 2)) * scale, columns=LABELS)
        logits.insert(0, "sample_id", test_ids[::-1])  # another order than the stack
        logits.to_parquet(root / f"{name}.parquet", index=False)
        members[name] = str(root / f"{name}.parquet")
    ens = pd.DataFrame({"sample_id": test_ids, "a": 0.0, "b": 0.0})
    ens.to_parquet(root / "ens.parquet", index=False)
    (root / "selection.json").write_text(json.dumps({"members": ["m1", "m2"]}))
    return train_ids, test_ids, members


def test_run_novelty_writes_scores_and_gallery(tmp_path):
    rng = np.random.default_rng(3)
    train_ids, test_ids, members = write_inputs(tmp_path, rng)
    stacks = [str(tmp_path / f"stack_{s}.npy") for s in ("train", "test")]
    ids = [s.replace(".npy", ".csv") for s in stacks]
    out = {"scores": str(tmp_path / "novelty_scores.csv"),
           "gallery": str(tmp_path / "gallery.png")}
    inputs = {"stacks": stacks, "stack_ids": ids, "ensemble": tmp_path / "ens.parquet",
              "selection": tmp_path / "selection.json", "members": list(members.values())}
    info = run_novelty(inputs=inputs, outputs=out, settings={"epochs": 8, "top_k": 4},
                       train_ids=train_ids, unlabelled=test_ids, members=list(members),
                       labels=LABELS, seed=0, log_mode="log1p1000", axes=AXES.as_dict())
    assert info["n_scored"] == 6 and info["n_train"] == 48
    table = pd.read_csv(out["scores"])
    assert sorted(table["sample_id"]) == test_ids
    assert table.iloc[0]["sample_id"] == "X5"  # the stripes
    np.testing.assert_allclose(table["entropy"], 1.0)  # all ensemble logits are 0
    assert (table["disagreement"] > 0).all()
    assert (tmp_path / "gallery.png").stat().st_size > 10_000
    with pytest.raises(InputError, match="no logits"):
        run_novelty(inputs=inputs, outputs=out, settings={"epochs": 1, "top_k": 4},
                    train_ids=train_ids, unlabelled=[*test_ids, "T00"], members=list(members),
                    labels=LABELS, seed=0, log_mode="log1p1000", axes=AXES)
    with pytest.raises(ValueError, match="do not match the representation's axes"):
        run_novelty(inputs=inputs, outputs=out, settings={"epochs": 1, "top_k": 4},
                    train_ids=train_ids, unlabelled=test_ids, members=list(members),
                    labels=LABELS, seed=0, log_mode="log1p1000",
                    axes=render_axes(render_spec(n_mass=24, n_x=32)))


def test_gallery_draws_the_representation_axes():
    spec, images = windowed_render()
    table = pd.DataFrame({"sample_id": ["S1"], "recon_error": [0.5], "entropy": [0.9],
                          "disagreement": [0.1]})
    ax = gallery_figure(images, table, log_mode="none", axes=render_axes(spec),
                        title="t").axes[0]
    assert ax.images[0].get_extent() == [0.0, 1100.0, 9.5, 20.5]
    assert ax.get_xlabel() == "temperature (degC)" and ax.get_ylabel() == "m/z"
    assert ax.get_title().startswith("S1\nrecon 0.5")
