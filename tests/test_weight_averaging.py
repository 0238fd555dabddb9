"""Cheap variance reduction of a member: the mean of the last k epochs' weights
(``average_last_epochs``) and one member trained with several seeds (``n_seeds``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from spectrovision.errors import ConfigError
from spectrovision.learn import loop as loop_mod
from spectrovision.learn.checkpoint import load_trained
from spectrovision.learn.loop import evaluate, recalibrate_batch_norm, train_model
from spectrovision.learn.models import SeedAverage, create_model
from spectrovision.learn.predict import run_predict
from spectrovision.learn.settings import ModelSettings
from spectrovision.learn.train import seed_average_losses
from test_train import (LABELS, SETTINGS, inputs, kill_then_resume, order_data, same_weights,
                        state, toy, train)  # noqa: F401 (toy: a fixture)

CPU = torch.device("cpu")


def noisy_order_data(n: int, seed: int, flip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`order_data` with a fraction ``flip`` of the labels flipped (seeded): a net that
    fits the noise validates worse at every epoch and seed, each differently."""
    x, y = order_data(n, seed)
    flips = torch.from_numpy(np.random.default_rng(seed + 100).random((n, 1)) < flip)
    return x, torch.where(flips, 1.0 - y, y)


def recorded_epochs(monkeypatch) -> list[dict[str, torch.Tensor]]:
    """The live weights the loop checkpoints after every epoch (checkpoint_interval_s=0), in
    order."""
    seen: list[dict[str, torch.Tensor]] = []
    real = loop_mod.save_torch

    def record(path, obj):
        seen.append(copy.deepcopy(obj["model"]))
        real(path, obj)

    monkeypatch.setattr(loop_mod, "save_torch", record)
    return seen


def manual_mean(states: list[dict[str, torch.Tensor]], key: str) -> torch.Tensor:
    total = states[0][key].double()
    for other in states[1:]:
        total = total + other[key].double()
    return (total / len(states)).to(states[0][key].dtype)


BASE = {**SETTINGS, "epochs": 4, "batch_size": 8, "lr": 1e-2, "time_resize": None,
        "amp": False, "channels_last": False, "net_width": 8}


def test_average_last_epochs_keeps_the_mean_of_the_last_k_epochs_weights(monkeypatch,
                                                                         tmp_path):
    x, y = order_data(48, seed=3)
    seen = recorded_epochs(monkeypatch)
    settings = ModelSettings(**{**BASE, "backbone": "mzconv1d", "average_last_epochs": 3})
    result = train_model(x[:32], y[:32], x[32:], y[32:], settings, "multilabel",
                         checkpoint=tmp_path / "last.pt", checkpoint_interval_s=0)
    assert len(seen) == 4 and result.kept_epoch == 4
    # mzconv1d has no batch norm: every tensor is the mean of epochs 2, 3 and 4's
    for key, value in result.state_dict.items():
        torch.testing.assert_close(value, manual_mean(seen[1:], key), rtol=0, atol=1e-7)
    assert not torch.equal(result.state_dict["backbone.mix.weight"], seen[-1]["backbone.mix.weight"])
    # the averaged weights are validated once: their own loss, not the last epoch's
    model = create_model(settings, (1, 6, 32), 1)
    model.load_state_dict(result.state_dict)
    loss = evaluate(model, x[32:], y[32:], 32, 16, "multilabel", CPU, False, False)
    assert result.averaged_val_loss == pytest.approx(loss, rel=1e-6)
    assert result.kept_val_loss == result.averaged_val_loss
    assert result.averaged_val_loss != result.history[-1]["val_loss"]


def test_averaged_weights_get_batch_norm_statistics_of_their_own(monkeypatch, tmp_path):
    x, y = order_data(48, seed=4)
    seen = recorded_epochs(monkeypatch)
    settings = ModelSettings(**{**BASE, "backbone": "conv1d", "average_last_epochs": 2})
    result = train_model(x[:32], y[:32], x[32:], y[32:], settings, "multilabel",
                         checkpoint=tmp_path / "last.pt", checkpoint_interval_s=0)
    stats = [k for k in result.state_dict if k.endswith(("running_mean", "running_var"))]
    assert stats
    expected = create_model(settings, (1, 6, 32), 1)
    expected.load_state_dict({k: manual_mean(seen[2:], k) if v.dtype.is_floating_point
                              else v for k, v in seen[-1].items()})
    recalibrate_batch_norm(expected, x[:32], 32, 16, CPU, False)
    for key, value in result.state_dict.items():
        torch.testing.assert_close(value, expected.state_dict()[key], rtol=1e-6, atol=1e-6)
    # not the mean of the epochs' statistics
    assert not all(torch.allclose(result.state_dict[k], manual_mean(seen[2:], k)) for k in stats)


@pytest.mark.parametrize("changes, match", [
    ({"keep_weights": "best_val"}, "average_last_epochs.*keep_weights: last"),
    ({"average_last_epochs": 5}, "average_last_epochs.*at most epochs"),
])
def test_average_last_epochs_refuses_what_it_cannot_keep(changes, match):
    x, y = order_data(16, seed=0)
    settings = ModelSettings(**{**BASE, "backbone": "conv1d", "average_last_epochs": 2,
                                **changes})
    with pytest.raises(ConfigError, match=f"models/toy/{match}"):
        train_model(x[:8], y[:8], x[8:], y[8:], settings, "multilabel")


def test_averaging_the_last_epochs_lowers_the_validation_loss_of_a_noise_fit():
    """30% flipped labels and a high learning rate: the last epochs fit different noise
    and their mean validates better than the last one (seeded, deterministic). With a
    moderate learning rate the mean of the cosine schedule's last epochs can be worse
    (docs/benchmarks.md): the switch is off by default."""
    x, y = noisy_order_data(160, seed=5, flip=0.3)
    base = {**BASE, "backbone": "conv1d", "net_width": 16, "epochs": 6, "lr": 3e-2}
    single = train_model(x[:80], y[:80], x[80:], y[80:], ModelSettings(**base), "multilabel")
    averaged = train_model(x[:80], y[:80], x[80:], y[80:],
                           ModelSettings(**{**base, "average_last_epochs": 3}), "multilabel")
    # the same training; only what is kept differs
    assert [r["val_loss"] for r in single.history] == [r["val_loss"] for r in averaged.history]
    assert averaged.kept_val_loss < single.kept_val_loss


def test_the_mean_of_two_seeds_validates_better_than_either_on_noisy_labels():
    """20% flipped labels: the two seeds fit different noise; the mean of their logits
    (what n_seeds: 2 predicts) validates better than either seed alone, the model's own
    seed (n_seeds: 1) included. Jensen alone only promises better than their mean loss."""
    x, y = noisy_order_data(240, seed=5, flip=0.2)
    base = {**BASE, "backbone": "conv1d", "net_width": 16, "epochs": 6, "lr": 3e-3,
            "batch_size": 16}
    runs = [ModelSettings(**{**base, "seed": seed}) for seed in (3, 4)]
    results = [train_model(x[:120], y[:120], x[120:], y[120:], run, "multilabel")
               for run in runs]
    losses = seed_average_losses(results, runs[0], (1, 6, 32), 32, "multilabel", x[120:],
                                 y[120:], None, "cpu")
    assert losses[:2] == pytest.approx([r.kept_val_loss for r in results], rel=1e-5)
    assert losses[2] < min(losses[:2])  # measured: 0.548 vs 0.592 and 0.554


def predict_oof(toy: dict, weights: Path, out: Path) -> pd.DataFrame:
    paths = {"oof": str(out / "oof.parquet"), "test": str(out / "test.parquet")}
    run_predict(inputs={**inputs(toy), "weights": weights}, outputs=paths,
                settings={"tta_n_widths": 3, "tta_step": 4, "batch_size": 16}, fold=0,
                unlabelled=toy["test_ids"])
    return pd.read_parquet(paths["oof"])


FAST = {**SETTINGS, "backbone": "conv1d", "net_width": 8}


def test_n_seeds_member_table_is_the_mean_of_the_seeds_logits(toy, tmp_path):
    metrics = train(toy, tmp_path / "two", {**FAST, "n_seeds": 2})
    for seed in (3, 4):
        train(toy, tmp_path / f"seed{seed}", {**FAST, "seed": seed})
    bundle = tmp_path / "two" / "model.pt"
    # seed 3 (the model's own) trains exactly as the single-seed member does; then seed 4
    two = state(bundle)
    for k, seed in enumerate((3, 4)):
        one = state(tmp_path / f"seed{seed}" / "model.pt")
        assert all(torch.equal(two[f"members.{k}.{key}"], v) for key, v in one.items())
    assert isinstance(load_trained(bundle)[0], SeedAverage)
    tables = [predict_oof(toy, w, _mk(tmp_path / name)) for name, w in (
        ("p2", bundle), ("p3", tmp_path / "seed3" / "model.pt"),
        ("p4", tmp_path / "seed4" / "model.pt"))]
    np.testing.assert_allclose(tables[0][LABELS], (tables[1][LABELS] + tables[2][LABELS]) / 2,
                               rtol=1e-5, atol=1e-6)
    assert metrics["seeds"] == [3, 4] and len(metrics["seed_val_losses"]) == 2
    history = pd.read_csv(tmp_path / "two" / "history.csv")
    assert list(history["seed"]) == [3, 3, 3, 4, 4, 4]
    assert not list((tmp_path / "two" / "ckpt").glob("*.pt"))  # every seed's state removed


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_killed_seeds_and_epoch_average_resume_to_the_same_bits(toy, tmp_path):
    settings = {**FAST, "n_seeds": 2, "average_last_epochs": 2}
    train(toy, tmp_path / "whole", settings)
    out, left = kill_then_resume(toy, settings, tmp_path)
    assert left["epoch"] == 1 and len(left["snapshots"]) == 1  # epoch 2 of 3 averaged
    assert same_weights(tmp_path / "whole" / "model.pt", Path(out["weights"]))
    metrics = json.loads(Path(out["metrics"]).read_text())
    assert metrics["resumed_from_epoch"] == 2 and metrics["average_last_epochs"] == 2
