"""Training and prediction of one model x fold on generated stacks (CPU)."""

from __future__ import annotations

import json
import math
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from spectrovision.learn import loop as loop_mod
from spectrovision.learn.checkpoint import load_trained
from spectrovision.learn.loop import train_model
from spectrovision.learn.predict import predict_logits, run_predict
from spectrovision.learn.settings import ModelSettings
from spectrovision.learn.train import run_train

LABELS = ["a", "b", "c"]
SETTINGS = {"name": "toy", "representation": "toy", "backbone": "resnet10t", "net_width": None,
            "head": "pool", "weights": None,
            "in_chans": None, "epochs": 3, "batch_size": 8, "lr": 3e-3, "weight_decay": 0.01,
            "warmup_epochs": 1, "lr_cycles": 1, "grad_clip": 1.0, "loss": "bce",
            "focal_gamma": 2.0,
            "label_smoothing": 0.0, "mixup_p": 0.0, "time_resize": [20, 28], "time_warp": None,
            "scan_jitter": 0, "scan_stride": 1, "render_log_floor": None,
            "mass_scale_sigma": 0.0, "global_scale_sigma": 0.0, "background_mix_quantiles": None,
            "sample_mix_p": 0.0, "sample_mix_mode": "mean",
            "amp": True, "channels_last": True, "drop_rate": 0.0, "keep_weights": "last",
            "ema_decay": None, "average_last_epochs": 0, "n_seeds": 1,
            "precise_bn": False, "validate_every": 1,
            "metadata_columns": [], "seed": 3}


def write_toy_data(root: Path, n_train: int = 24, n_test: int = 6, seed: int = 0) -> dict:
    """Two splits of (2, 16, 24) images; label j lights up mass row 3j; 2 folds."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ids = {"train": [f"T{i:03d}" for i in range(n_train)],
           "test": [f"X{i:03d}" for i in range(n_test)]}
    y = (rng.random((n_train, 3)) < 0.5).astype(float)
    stacks, csvs = [], []
    for split, names in ids.items():
        images = rng.random((len(names), 2, 16, 24)).astype(np.float16) * 0.2
        if split == "train":
            for j in range(3):
                images[y[:, j] == 1, 0, 3 * j, 8:16] += 1.0
        np.save(root / f"stack_{split}.npy", images)
        pd.DataFrame({"sample_id": names}).to_csv(root / f"stack_{split}.csv", index=False)
        stacks.append(str(root / f"stack_{split}.npy"))
        csvs.append(str(root / f"stack_{split}.csv"))
    folds = pd.DataFrame({"sample_id": ids["train"], "fold": [i % 2 for i in range(n_train)]})
    folds.to_csv(root / "folds.csv", index=False)
    labels = pd.DataFrame(y, columns=LABELS, index=pd.Index(ids["train"], name="sample_id"))
    return {"stacks": stacks, "stack_ids": csvs, "folds": str(root / "folds.csv"),
            "labels": labels, "test_ids": ids["test"]}


def outputs(root: Path) -> dict[str, str]:
    return {k: str(root / n) for k, n in (("weights", "model.pt"), ("metrics", "metrics.json"),
                                          ("history", "history.csv"), ("curve", "curve.png"))}


def inputs(data: dict) -> dict:
    return {"stacks": data["stacks"], "stack_ids": data["stack_ids"], "folds": data["folds"]}


def train(data: dict, root: Path, settings: dict | None = None, fold: int = 0) -> dict:
    return run_train(inputs=inputs(data), outputs=outputs(root), settings=settings or SETTINGS,
                     fold=fold, task="multilabel", label_table=data["labels"], labels=LABELS,
                     checkpoint=root / "ckpt" / "last.pt", threads=1)


def state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["state_dict"]


def same_weights(a: Path, b: Path) -> bool:
    sa, sb = state(a), state(b)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict:
    return write_toy_data(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    train(toy, root)
    return root


def test_training_writes_the_progress_that_status_reads(trained):
    from spectrovision.learn.progress import job_status

    progress = json.loads((trained / "ckpt" / "progress.json").read_text())
    history = pd.read_csv(trained / "history.csv")
    assert (progress["epoch"], progress["epochs"]) == (3, 3)
    assert progress["epoch_seconds"] == pytest.approx(list(history["seconds"]), abs=1e-3)
    # laid out as results/checkpoints/{model}/fold{k}/: a started job reads as running
    results = trained / "results"
    target = results / "checkpoints" / "m" / "fold0"
    target.mkdir(parents=True)
    (target / "progress.json").write_text(json.dumps(dict(progress, epoch=1)))
    job = job_status(results, "m", 0, epochs=3)
    assert job.state == "running" and job.epoch == 1
    # progress.json keeps epoch seconds to the millisecond
    assert job.seconds_left == pytest.approx(2 * sum(history["seconds"]) / 3, abs=3e-3)


def test_outputs_hold_the_best_validation_epoch(trained):
    history = pd.read_csv(trained / "history.csv")
    metrics = json.loads((trained / "metrics.json").read_text())
    assert list(history["epoch"]) == [1, 2, 3]
    assert metrics["best_epoch"] == int(history.loc[history["val_loss"].idxmin(), "epoch"])
    assert metrics["best_val_loss"] == pytest.approx(history["val_loss"].min())
    assert metrics["n_train"] == 12 and metrics["n_val"] == 12 and metrics["device"] == "cpu"
    assert metrics["train_width"] == 24
    assert (trained / "curve.png").stat().st_size > 1000
    assert not (trained / "ckpt" / "last.pt").exists()  # removed once the outputs exist
    model, bundle = load_trained(trained / "model.pt")
    assert bundle["labels"] == LABELS and bundle["fold"] == 0
    assert model(torch.zeros(1, 2, 16, 24)).shape == (1, 3)


def test_same_seed_same_weights_other_seed_other_weights(toy, trained, tmp_path):
    train(toy, tmp_path / "again")
    assert same_weights(trained / "model.pt", tmp_path / "again" / "model.pt")
    train(toy, tmp_path / "other", {**SETTINGS, "seed": 4})
    assert not same_weights(trained / "model.pt", tmp_path / "other" / "model.pt")


DRIVER = """
import sys, pickle
from spectrovision.learn.train import run_train
data, out, settings = pickle.load(open(sys.argv[1], "rb"))
run_train(inputs={{k: data[k] for k in ("stacks", "stack_ids", "folds")}}, outputs=out,
          settings=settings, fold=0, task="multilabel", label_table=data["labels"],
          labels={labels!r}, checkpoint=sys.argv[2], threads=1)
"""


def kill_then_resume(data: dict, settings: dict, root: Path) -> tuple[dict, dict]:
    """Train fold 0 in a subprocess SIGKILLed after epoch 2, then again to the end: the
    outputs and the checkpoint as the kill left it."""
    import pickle

    out = outputs(root / "run")
    ckpt = root / "outside" / "last.pt"
    args = root / "args.pkl"
    args.write_bytes(pickle.dumps((data, out, settings)))
    driver = root / "driver.py"
    driver.write_text(DRIVER.format(labels=LABELS))
    env = {**os.environ, "PYTHONPATH": str(Path(loop_mod.__file__).parents[2])}
    killed = subprocess.run([sys.executable, str(driver), str(args), str(ckpt)],
                            env={**env, loop_mod.STOP_AFTER_EPOCH_ENV: "2"},
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert ckpt.exists() and not Path(out["weights"]).exists()
    left = torch.load(ckpt, weights_only=False)
    resumed = subprocess.run([sys.executable, str(driver), str(args), str(ckpt)], env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    return out, left


def test_sigkilled_training_resumes_to_identical_weights(toy, trained, tmp_path):
    out, left = kill_then_resume(toy, SETTINGS, tmp_path)
    assert left["epoch"] == 1  # two epochs done
    metrics = json.loads(Path(out["metrics"]).read_text())
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs"] == 3
    assert same_weights(trained / "model.pt", Path(out["weights"]))
    uninterrupted = pd.read_csv(trained / "history.csv")
    again = pd.read_csv(out["history"])
    np.testing.assert_allclose(again["val_loss"], uninterrupted["val_loss"], rtol=0, atol=0)


def test_checkpoint_interval_spaces_the_saves_and_never_changes_the_result(tmp_path):
    """checkpoint_interval_s 0 saves after every epoch (the checkpoint holds the last one);
    an interval longer than the run saves none, while the progress record that status
    reads is written every epoch either way, and the kept weights and the history's
    losses are the same bits."""
    torch.manual_seed(0)
    x, y = torch.rand(20, 2, 16, 24), (torch.rand(20, 3) > 0.5).float()
    settings = ModelSettings.with_defaults({**SETTINGS, "amp": False})
    runs = {}
    for name, interval in (("every", 0.0), ("never", 1e9)):
        ckpt = tmp_path / name / "last.pt"
        runs[name] = train_model(x[:14], y[:14], x[14:], y[14:], settings, "multilabel",
                                 checkpoint=ckpt, checkpoint_interval_s=interval)
        progress = json.loads((ckpt.parent / "progress.json").read_text())
        assert (progress["epoch"], progress["epochs"]) == (3, 3)
    assert torch.load(tmp_path / "every" / "last.pt", weights_only=False)["epoch"] == 2
    assert not (tmp_path / "never" / "last.pt").exists()
    every, never = runs["every"], runs["never"]
    assert all(torch.equal(every.state_dict[k], never.state_dict[k])
               for k in every.state_dict)
    assert [r["val_loss"] for r in every.history] == [r["val_loss"] for r in never.history]


def test_checkpoint_of_other_settings_is_not_resumed(toy, tmp_path, caplog):
    root = tmp_path / "a"
    torch.save({"fingerprint": "stale", "epoch": 1}, _mk(root / "ckpt" / "last.pt"))
    with caplog.at_level(logging.INFO, logger="spectrovision.learn"):
        metrics = train(toy, root, {**SETTINGS, "epochs": 1})
    assert metrics["resumed_from_epoch"] is None
    assert "starting over" in caplog.text


def test_a_killed_run_starts_over_when_its_renders_changed(tmp_path):
    """Kill mid-training, re-render with a setting that keeps the image shape (here: the
    intensities halved), re-run: a fresh start that says why, not a resume."""
    import pickle

    data = write_toy_data(tmp_path / "toy")
    out = outputs(tmp_path / "run")
    ckpt = tmp_path / "outside" / "last.pt"
    args = tmp_path / "args.pkl"
    args.write_bytes(pickle.dumps((data, out, SETTINGS)))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(labels=LABELS) + "print(open(sys.argv[3]).read())\n")
    log_file = tmp_path / "train.log"
    driver.write_text(DRIVER.format(labels=LABELS).replace(
        "import sys, pickle\n", "import sys, pickle, logging\n"
        "logging.basicConfig(filename=sys.argv[3], level=logging.INFO)\n"))
    env = {**os.environ, "PYTHONPATH": str(Path(loop_mod.__file__).parents[2])}
    command = [sys.executable, str(driver), str(args), str(ckpt), str(log_file)]
    killed = subprocess.run(command, env={**env, loop_mod.STOP_AFTER_EPOCH_ENV: "2"},
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    for stack in data["stacks"]:
        np.save(stack, np.load(stack) * np.float16(0.5))  # same shape, other content
    again = subprocess.run(command, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(Path(out["metrics"]).read_text())["resumed_from_epoch"] is None
    log = log_file.read_text()
    assert "was written for other renders_train, renders_val; starting over" in log


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_not_on_a_tty_each_epoch_is_one_plain_log_line(toy, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="spectrovision.learn"):
        train(toy, tmp_path, {**SETTINGS, "epochs": 2})
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()
             and "val loss" in r.getMessage()]
    assert len(lines) == 2 and "epoch 1/2" in lines[0] and "epoch 2/2" in lines[1]


def _widths_seen(toy, monkeypatch, settings) -> list[int]:
    seen: list[int] = []
    original = loop_mod.create_model

    def spy(*args, **kwargs):
        model = original(*args, **kwargs)
        model.adapter.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].shape[-1])
                                                if m.training else None)
        return model

    monkeypatch.setattr(loop_mod, "create_model", spy)
    data = toy
    x = torch.from_numpy(np.load(data["stacks"][0]).astype(np.float32))
    y = torch.tensor(data["labels"].to_numpy(np.float32))
    train_model(x[:16], y[:16], x[16:], y[16:],
                ModelSettings(**{**settings, "epochs": 3, "batch_size": 4}), "multilabel")
    return seen


def test_time_resize_switch_varies_the_training_width(toy, monkeypatch):
    on = _widths_seen(toy, monkeypatch, SETTINGS)
    assert min(on) >= 20 and max(on) <= 28 and len(set(on)) > 2
    off = _widths_seen(toy, monkeypatch, {**SETTINGS, "time_resize": None})
    assert set(off) == {24}


def test_grad_clip_switch_clips_at_the_configured_norm(toy, monkeypatch):
    calls: list[float] = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda params, max_norm: calls.append(max_norm) or real(params, max_norm))
    x = torch.from_numpy(np.load(toy["stacks"][0]).astype(np.float32))
    y = torch.tensor(toy["labels"].to_numpy(np.float32))
    short = {**SETTINGS, "epochs": 1, "batch_size": 8}
    train_model(x[:16], y[:16], x[16:], y[16:], ModelSettings(**{**short, "grad_clip": 0.5}),
                "multilabel")
    assert calls == [0.5, 0.5]
    calls.clear()
    train_model(x[:16], y[:16], x[16:], y[16:], ModelSettings(**{**short, "grad_clip": None}),
                "multilabel")
    assert calls == []


@pytest.mark.parametrize("switch", [{"mixup_p": 1.0}, {"time_warp": [0.5, 2.0]},
                                    {"label_smoothing": 0.2}, {"loss": "focal"},
                                    {"head": "sed"}, {"weight_decay": 0.5},
                                    {"ema_decay": 0.9}, {"lr_cycles": 2}])
def test_each_recipe_switch_changes_the_trained_weights(toy, trained, tmp_path, switch):
    train(toy, tmp_path, {**SETTINGS, **switch})
    assert not same_weights(trained / "model.pt", tmp_path / "model.pt")


def test_multiclass_trains_with_cross_entropy(toy, tmp_path):
    one_hot = pd.DataFrame(np.eye(3)[np.arange(len(toy["labels"])) % 3], columns=LABELS,
                           index=toy["labels"].index)
    metrics = run_train(inputs=inputs(toy), outputs=outputs(tmp_path),
                        settings={**SETTINGS, "epochs": 1}, fold=1, task="multiclass",
                        label_table=one_hot, labels=LABELS, checkpoint=tmp_path / "c.pt")
    assert 0 < metrics["best_val_loss"] < 5  # cross-entropy of 3 classes starts near ln 3


def test_a_planted_signal_is_learned(tmp_path):
    data = write_toy_data(tmp_path / "data", n_train=64, seed=1)
    # precise_bn: with ~30 images per fold, eval-mode batch-norm statistics lag the weights
    metrics = train(data, tmp_path, {**SETTINGS, "epochs": 8, "lr": 3e-3, "precise_bn": True})
    assert metrics["best_val_loss"] < 0.3  # prior log loss of 3 balanced labels: ~0.69


def test_tta_averages_logits_over_widths(trained):
    model, _ = load_trained(trained / "model.pt")
    x = torch.rand(5, 2, 16, 24)
    both = predict_logits(model, x, [20, 28], batch_size=2)
    each = [predict_logits(model, x, [w], batch_size=5) for w in (20, 28)]
    np.testing.assert_allclose(both, (each[0] + each[1]) / 2, rtol=1e-5, atol=1e-6)
    assert not np.allclose(each[0], each[1])


def test_predict_writes_fold_oof_and_unlabelled_test_logits(toy, trained, tmp_path):
    out = {"oof": str(tmp_path / "oof.parquet"), "test": str(tmp_path / "test.parquet"),
           "info": str(tmp_path / "tta.json")}
    weighted = {**inputs(toy), "weights": trained / "model.pt"}
    tta = {"tta_n_widths": 3, "tta_step": 4, "batch_size": 16}
    info = run_predict(inputs=weighted, outputs=out, settings=tta, fold=0,
                       unlabelled=toy["test_ids"])
    assert info["tta_widths"] == [20, 24, 28]
    oof, test = pd.read_parquet(out["oof"]), pd.read_parquet(out["test"])
    folds = pd.read_csv(toy["folds"])
    assert sorted(oof["sample_id"]) == sorted(folds.loc[folds["fold"] == 0, "sample_id"])
    assert (oof["fold"] == 0).all() and list(oof.columns) == ["sample_id", "fold", *LABELS]
    assert sorted(test["sample_id"]) == sorted(toy["test_ids"])
    assert np.isfinite(test[LABELS].to_numpy()).all()
    with pytest.raises(ValueError, match="fold 0, not 1"):
        run_predict(inputs=weighted, outputs=out, settings=tta, fold=1,
                    unlabelled=toy["test_ids"])


# --- 1-D backbones -------------------------------------------------------------------------

@pytest.mark.parametrize("backbone", ["conv1d", "gru1d", "transformer1d"])
def test_1d_backbone_trains_deterministically_and_predicts_at_tta_widths(toy, tmp_path,
                                                                         backbone):
    net = {**SETTINGS, "backbone": backbone, "epochs": 2, "mixup_p": 0.5,
           "time_warp": [0.8, 1.25], "net_width": 16}
    train(toy, tmp_path / "a", net)
    train(toy, tmp_path / "b", net)
    assert same_weights(tmp_path / "a" / "model.pt", tmp_path / "b" / "model.pt")
    train(toy, tmp_path / "c", {**net, "seed": 4})
    assert not same_weights(tmp_path / "a" / "model.pt", tmp_path / "c" / "model.pt")
    model, _ = load_trained(tmp_path / "a" / "model.pt")
    assert predict_logits(model, torch.rand(3, 2, 16, 24), [20, 28], batch_size=2).shape == (3, 3)


def order_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 6, 32) images with one peak in mass row 1 and one in row 4 at two random columns;
    label 1 when row 1 peaks BEFORE row 4. Each row alone says nothing about the label
    beyond where its peak sits; the order is a pattern along time."""
    rng = np.random.default_rng(seed)
    cols = np.arange(32)
    x = rng.normal(0.0, 0.05, (n, 1, 6, 32)).astype(np.float32)
    y = np.zeros((n, 1), np.float32)
    for i in range(n):
        first, second = sorted(rng.choice(np.arange(2, 30), 2, replace=False))
        before = rng.random() < 0.5
        a, b = (first, second) if before else (second, first)
        x[i, 0, 1] += np.exp(-0.5 * ((cols - a) / 1.5) ** 2)
        x[i, 0, 4] += np.exp(-0.5 * ((cols - b) / 1.5) ** 2)
        y[i, 0] = float(before)
    return torch.from_numpy(x), torch.from_numpy(y)


def test_conv1d_learns_a_temporal_order_pattern():
    x, y = order_data(320, seed=0)
    settings = ModelSettings(**{**SETTINGS, "backbone": "conv1d", "net_width": 32,
                                "epochs": 5, "batch_size": 32, "lr": 3e-3,
                                "time_resize": None, "precise_bn": True})
    result = train_model(x[:240], y[:240], x[240:], y[240:], settings, "multilabel")
    assert result.best_val_loss < 0.1  # the prior's log loss of a balanced label: 0.69


def shape_data(n: int, seed: int, n_mass: int = 12, n_cols: int = 48,
               row: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, n_mass, n_cols) images; EVERY m/z trace holds either one wide peak or a double
    peak, at a random column and a random intensity (x 0.2 to x 5); the label is 1 when
    trace ``row`` is the double peak. The label is a shape of one trace, whatever its
    intensity; every other trace shows the same shapes as distractors."""
    rng = np.random.default_rng(seed)
    cols = np.arange(n_cols)
    x = rng.normal(0.0, 0.03, (n, 1, n_mass, n_cols)).astype(np.float32)
    y = np.zeros((n, 1), np.float32)
    for i in range(n):
        for r in range(n_mass):
            double = rng.random() < 0.5
            centre = rng.uniform(10, n_cols - 10)
            if double:
                trace = sum(np.exp(-0.5 * ((cols - centre + s) / 1.2) ** 2) for s in (-3, 3))
            else:
                trace = 1.4 * np.exp(-0.5 * ((cols - centre) / 2.5) ** 2)
            x[i, 0, r] += 10 ** rng.uniform(-0.7, 0.7) * trace
            if r == row:
                y[i, 0] = float(double)
    return torch.from_numpy(x), torch.from_numpy(y)


def test_mzconv1d_reads_one_traces_shape_with_fewer_parameters_than_conv1d():
    """Same data, split, seed and recipe: the per-trace convolution shared across m/z
    learns 'double peak in trace 5' from every trace at once; conv1d (m/z rows as input
    channels) must learn it for trace 5 alone, with about 4x the parameters."""
    from spectrovision.learn.models import create_model, model_summary

    x, y = shape_data(600, seed=0)
    base = {**SETTINGS, "net_width": 32, "epochs": 15, "batch_size": 32, "lr": 3e-3,
            "time_resize": None, "precise_bn": True, "amp": False, "channels_last": False}
    val, size = {}, {}
    for backbone in ("conv1d", "mzconv1d"):
        settings = ModelSettings(**{**base, "backbone": backbone})
        result = train_model(x[:400], y[:400], x[400:], y[400:], settings, "multilabel")
        val[backbone] = result.history[-1]["val_loss"]  # the kept (last) epoch's
        size[backbone] = model_summary(create_model(settings, (1, 12, 48), 1))["parameters"]
    # measured: mzconv1d 0.12, conv1d 0.20 (0.47 and 0.31 with data seeds 1 and 2)
    assert val["mzconv1d"] < 0.2 and val["mzconv1d"] < 0.75 * val["conv1d"]
    assert size["mzconv1d"] < size["conv1d"] / 3


def pair_data(n: int, seed: int, rows: np.ndarray, n_mass: int = 24,
              n_cols: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, n_mass, n_cols) images with a peak at m/z row m (drawn from ``rows``) and a
    weaker one in the same columns at row m + 2 (label 1, an isotope-like pair) or m + 3
    (label 0), plus one distractor peak at a random row and column."""
    rng = np.random.default_rng(seed)
    cols = np.arange(n_cols)
    x = rng.normal(0.0, 0.03, (n, 1, n_mass, n_cols)).astype(np.float32)
    y = np.zeros((n, 1), np.float32)

    def peak() -> np.ndarray:
        return np.exp(-0.5 * ((cols - rng.uniform(3, n_cols - 3)) / 1.5) ** 2)

    for i in range(n):
        pair = rng.random() < 0.5
        row, shape, height = rng.choice(rows), peak(), 10 ** rng.uniform(-0.3, 0.3)
        x[i, 0, row] += height * shape
        x[i, 0, row + (2 if pair else 3)] += 0.5 * height * shape
        x[i, 0, rng.integers(0, n_mass)] += 10 ** rng.uniform(-0.3, 0.3) * peak()
        y[i, 0] = float(pair)
    return torch.from_numpy(x), torch.from_numpy(y)


def test_massconv1d_reads_an_mz_pattern_at_mz_values_it_never_saw():
    """Trained on pairs that start at even m/z rows, validated on pairs at odd rows: the
    convolution along m/z learns the spacing once for every m/z and carries it to rows it
    never saw; conv1d (m/z rows as input channels) learns it per row and cannot."""
    even, odd = np.arange(0, 20, 2), np.arange(1, 20, 2)
    x, y = pair_data(400, 0, even)
    xv, yv = pair_data(200, 100, odd)
    base = {**SETTINGS, "net_width": 32, "epochs": 15, "batch_size": 32, "lr": 3e-3,
            "time_resize": None, "precise_bn": True, "amp": False, "channels_last": False}
    val = {}
    for backbone in ("conv1d", "massconv1d"):
        settings = ModelSettings(**{**base, "backbone": backbone})
        val[backbone] = train_model(x, y, xv, yv, settings, "multilabel").history[-1][
            "val_loss"]
    # measured: massconv1d 0.19, conv1d 2.03 (worse than chance, ln 2 = 0.69)
    assert val["massconv1d"] < 0.4 and val["conv1d"] > math.log(2)


def test_keep_weights_keeps_the_last_epoch_or_the_best_validation_epoch():
    # labels of pure noise on 40 training samples: the net memorises them, the validation
    # loss bottoms out before the last epoch, so the two choices keep different weights
    from spectrovision.learn.loop import evaluate
    from spectrovision.learn.models import create_model

    x, _ = order_data(120, seed=1)
    y = torch.from_numpy((np.random.default_rng(1).random((120, 1)) < 0.5).astype(np.float32))
    base = {**SETTINGS, "backbone": "conv1d", "net_width": 16, "epochs": 8, "batch_size": 8,
            "lr": 3e-2, "time_resize": None}
    results = {keep: train_model(x[:40], y[:40], x[40:], y[40:],
                                 ModelSettings(**{**base, "keep_weights": keep}), "multilabel")
               for keep in ("last", "best_val")}
    val = [row["val_loss"] for row in results["last"].history]
    assert val == [row["val_loss"] for row in results["best_val"].history]  # same training
    best = int(np.argmin(val)) + 1
    assert best < len(val)
    for keep, epoch in (("last", len(val)), ("best_val", best)):
        result = results[keep]
        assert (result.kept_epoch, result.best_epoch) == (epoch, best)
        model = create_model(ModelSettings(**{**base, "keep_weights": keep}), (1, 6, 32), 1, 0)
        model.load_state_dict(result.state_dict)
        loss = evaluate(model, x[40:], y[40:], 32, 64, "multilabel", torch.device("cpu"),
                        False, False)
        assert loss == pytest.approx(val[epoch - 1], rel=1e-5)


def test_validate_every_skips_validations_but_never_changes_training(caplog):
    """validate_every: 3 over 8 epochs validates epochs 3, 6 and 8 (the others' val_loss is
    NaN, their log line says "not validated") with the every-epoch run's losses;
    keep_weights: last keeps the same bits, best_val the best validated epoch; the curve
    draws the validated epochs only."""
    from spectrovision.learn.train import curve_figure

    x, _ = order_data(120, seed=1)
    y = torch.from_numpy((np.random.default_rng(1).random((120, 1)) < 0.5).astype(np.float32))
    base = {**SETTINGS, "backbone": "conv1d", "net_width": 16, "epochs": 8, "batch_size": 8,
            "lr": 3e-2, "time_resize": None}
    with caplog.at_level(logging.INFO, logger="spectrovision.learn"):
        runs = {(every, keep): train_model(x[:40], y[:40], x[40:], y[40:], ModelSettings(
                    **{**base, "validate_every": every, "keep_weights": keep}), "multilabel")
                for every in (1, 3) for keep in ("last", "best_val")}
    lines = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert sum("not validated" in line for line in lines) == 2 * 5
    assert sum("val loss" in line for line in lines) == 2 * 8 + 2 * 3
    full = [row["val_loss"] for row in runs[(1, "last")].history]
    sparse = [row["val_loss"] for row in runs[(3, "last")].history]
    validated = [3, 6, 8]
    assert [e for e, v in enumerate(sparse, 1) if not math.isnan(v)] == validated
    assert [sparse[e - 1] for e in validated] == [full[e - 1] for e in validated]
    last, every_epoch = runs[(3, "last")].state_dict, runs[(1, "last")].state_dict
    assert all(torch.equal(last[k], every_epoch[k]) for k in last)
    best = min(validated, key=lambda e: full[e - 1])
    assert runs[(3, "best_val")].kept_epoch == runs[(3, "best_val")].best_epoch == best
    assert runs[(1, "best_val")].best_epoch not in validated  # the option mattered here
    history = pd.DataFrame(runs[(3, "last")].history)
    fig = curve_figure(history, "toy")
    val_line = [line for line in fig.axes[0].lines if line.get_label() == "validation log loss"]
    assert list(val_line[0].get_xdata()) == validated


def test_lr_cycles_restart_the_learning_rate_inside_training():
    x, y = order_data(48, seed=2)
    base = {**SETTINGS, "backbone": "conv1d", "net_width": 8, "epochs": 4, "batch_size": 8,
            "warmup_epochs": 0, "time_resize": None}
    lrs = {cycles: [row["lr"] for row in train_model(
        x[:32], y[:32], x[32:], y[32:], ModelSettings(**{**base, "lr_cycles": cycles}),
        "multilabel").history] for cycles in (1, 2)}
    peak = base["lr"]
    # the lr after each epoch's last step: one decay, or two (epoch 2 ends cycle 1, epoch 3
    # starts again near the peak)
    assert all(a > b for a, b in zip(lrs[1], lrs[1][1:]))
    assert lrs[2][1] < 0.05 * peak and lrs[2][2] > 0.4 * peak and lrs[2][3] < 0.05 * peak
    # 4 steps per epoch; epoch 1 ends at step 3 of cycle 1's 8 steps, epoch 3 at step 3 of cycle 2
    cosine = peak * 0.5 * (1 + math.cos(math.pi * 3 / 8))
    assert lrs[2][0] == pytest.approx(cosine) and lrs[2][2] == pytest.approx(cosine)


def test_ema_decay_validates_keeps_and_resumes_the_running_average(toy, tmp_path):
    from spectrovision.learn.loop import evaluate
    from spectrovision.learn.models import create_model

    settings = {**SETTINGS, "ema_decay": 0.9, "epochs": 3, "time_resize": None}
    trained = train(toy, tmp_path / "whole", settings)
    # the history's validation loss is the average's: the kept weights reproduce it
    model, bundle = load_trained(tmp_path / "whole" / "model.pt")
    history = pd.read_csv(tmp_path / "whole" / "history.csv")
    assert trained["kept_epoch"] == 3
    images = torch.from_numpy(np.load(toy["stacks"][0]).astype(np.float32))
    folds = pd.read_csv(toy["folds"])
    val = torch.from_numpy((folds["fold"] == 0).to_numpy().copy())
    y = torch.tensor(toy["labels"].loc[folds["sample_id"][val.numpy()]].to_numpy(),
                     dtype=torch.float32)
    loss = evaluate(model, images[val], y, 24, 64, "multilabel", torch.device("cpu"), False,
                    False)
    assert loss == pytest.approx(history["val_loss"].iloc[-1], rel=1e-5)
    # a run killed after epoch 2 resumes the average too: the same weights to the bit
    out, left = kill_then_resume(toy, settings, tmp_path)
    assert left["ema"]["updates"] > 0
    assert same_weights(tmp_path / "whole" / "model.pt", Path(out["weights"]))


def test_weight_average_follows_the_documented_update():
    from spectrovision.learn.ema import WeightAverage

    net = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    start = {k: v.clone() for k, v in net.state_dict().items()}
    avg = WeightAverage(net, 0.5)
    expected = {k: v.clone() for k, v in start.items()}
    for step in (1, 2, 3):
        with torch.no_grad():
            for param in net.parameters():
                param.add_(float(step))
        net.train()(torch.randn(4, 2))  # moves the batch-norm statistics and its counter
        avg.update(net)
        d = min(0.5, (1 + step) / (10 + step))
        assert avg.decay_at(step) == d
        for name, value in net.state_dict().items():
            if value.dtype.is_floating_point:
                expected[name] = d * expected[name] + (1 - d) * value
            else:
                expected[name] = value.clone()
    for name, value in avg.model.state_dict().items():
        torch.testing.assert_close(value, expected[name])
    assert int(avg.model.state_dict()["1.num_batches_tracked"]) == 3
    assert not any(p.requires_grad for p in avg.model.parameters())
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(net, 1.0)
