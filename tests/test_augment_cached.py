"""The Mars-1 winner's augmentations on the cached render: each option does what its schema
entry says, and with every option off training and prediction are what they were."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from spectrovision.config.checks import check_augment
from spectrovision.config.schema import resolve_model, validate_config
from spectrovision.errors import ConfigError
from spectrovision.learn.augment import (CachedAugment, background_quantiles, batch_generator,
                                         centre_columns, from_linear, sample_mix, scan_columns,
                                         to_linear)
from spectrovision.learn.checkpoint import load_trained
from spectrovision.learn.loop import train_model
from spectrovision.learn.predict import predict_logits, run_predict
from spectrovision.learn.settings import ModelSettings, PredictSettings, model_settings

FLOOR = 1e-4
OFF = {"scan_jitter": 0, "scan_stride": 1, "render_log_floor": None, "mass_scale_sigma": 0.0,
       "global_scale_sigma": 0.0, "background_mix_quantiles": None, "sample_mix_p": 0.0,
       "sample_mix_mode": "mean"}


def settings(**keys) -> ModelSettings:
    return ModelSettings.with_defaults({"name": "m", "representation": "r", **keys})


def augment(**keys) -> CachedAugment:
    return CachedAugment.from_settings(settings(**keys))


def gen(seed: int = 0) -> torch.Generator:
    return batch_generator(torch.Generator().manual_seed(seed), "cpu")


def renders(n: int = 6, m: int = 8, x: int = 40, seed: int = 0) -> torch.Tensor:
    """clipped_log10-like renders: channel 0 in [0, 1] with some floor cells, channel 1 an
    x-coordinate plane."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 1, m, x, generator=g)
    image[image < 0.2] = 0.0
    coords = torch.linspace(0, 1, x).expand(n, 1, m, x)
    return torch.cat([image, coords], dim=1)


# --- random scan within a window -------------------------------------------------------------

def test_scan_jitter_stays_within_the_radius_and_prefers_near_columns():
    cols = scan_columns(200, 60, 1, 4, gen())
    offset = cols - centre_columns(60, 1)
    inner = offset[:, 4:-4]  # away from the clamped edges
    assert offset.abs().max() <= 4 and set(inner.unique().tolist()) == set(range(-4, 5))
    counts = torch.bincount((inner + 4).flatten(), minlength=9).float()
    assert counts[4] > counts[2] > counts[0] and counts[4] > counts[6] > counts[8]  # triangular
    assert torch.equal(scan_columns(3, 60, 1, 4, None), centre_columns(60, 1).expand(3, -1))


def test_a_planted_peak_lands_within_the_radius():
    x = torch.zeros(50, 1, 4, 40)
    x[..., 20] = 1.0  # one bright column
    out = augment(scan_jitter=3).view(x, None, gen(1))
    hits = out[:, 0, 0].nonzero()[:, 1]
    assert ((hits - 20).abs() <= 3).all() and len(set(hits.tolist())) > 3
    assert torch.equal(out[:, :, 1], out[:, :, 0])  # one scan for every m/z row


def test_scan_stride_takes_centre_columns_in_eval_and_sees_the_coarse_grid():
    aug = augment(scan_stride=4, scan_jitter=2)
    x = renders(x=42)
    plain = aug.plain(x, None)
    assert plain.shape[-1] == 10 == aug.width(42) and aug.image_shape((2, 8, 42)) == (2, 8, 10)
    assert torch.equal(plain, x[..., 2::4][..., :10])  # column j = source 4j + 2
    noisy = aug.view(x, None, gen())
    assert noisy.shape == plain.shape and not torch.equal(noisy, plain)
    assert torch.equal(augment(scan_jitter=2).plain(x, None), x)  # stride 1: plain = stored


# --- intensity scaling -------------------------------------------------------------------

def test_global_scaling_is_a_linear_factor_and_keeps_the_floor():
    x = renders()
    out = augment(global_scale_sigma=0.5, render_log_floor=FLOOR).view(x, None, gen(2))
    assert torch.equal(out[:, 1:], x[:, 1:])  # only the intensity channel
    assert (out[:, 0] >= 0).all() and torch.equal(out[:, 0][x[:, 0] == 0],
                                                 x[:, 0][x[:, 0] == 0])
    kept = (x[:, 0] > 0) & (out[:, 0] > 0)
    ratio = to_linear(out[:, 0], FLOOR) / to_linear(x[:, 0], FLOOR)  # 2^N per sample
    for i in range(len(x)):
        r = ratio[i][kept[i]]
        assert torch.allclose(r, r[0].expand_as(r), rtol=1e-4)
    octaves = torch.log2(torch.stack([ratio[i][kept[i]][0] for i in range(len(x))]))
    assert octaves.abs().max() > 0.05  # the factors differ from 1 and between samples
    shift = (out[:, 0] - x[:, 0])[kept]
    assert shift.abs().max() <= 3 * 0.5 * math.log10(2) / 4 + 1e-5  # log units: 4 decades


def test_mass_scaling_is_one_factor_per_row():
    x = renders()
    out = augment(mass_scale_sigma=0.5, render_log_floor=FLOOR).view(x, None, gen(3))
    diff = out[:, 0] - x[:, 0]
    both = (x[:, 0] > 0.5) & (out[:, 0] > 0)  # far from the floor: no clipping
    rows = [diff[i, r][both[i, r]] for i in range(len(x)) for r in range(x.shape[2])]
    assert all(torch.allclose(d, d[0].expand_as(d), atol=1e-5) for d in rows if len(d))
    firsts = torch.stack([d[0] for d in rows if len(d)])
    assert firsts.std() > 0.01  # rows differ


# --- background-quantile mix --------------------------------------------------------------

def test_background_quantiles_are_the_linear_quantiles_over_covered_columns():
    x = renders(n=2, m=3, x=30)
    x[1, 0, :, 20:] = 0.0  # columns the run does not reach
    q = background_quantiles(x, [0.1, 0.5], FLOOR)
    assert q.shape == (2, 2, 3)
    linear = (10.0 ** ((x[1, 0, :, :20].double() - 1) * 4)).numpy()
    np.testing.assert_allclose(q[1].numpy(), np.quantile(linear, [0.1, 0.5], axis=-1),
                               rtol=1e-4)
    empty = torch.zeros(1, 1, 3, 30)
    assert torch.equal(background_quantiles(empty, [0.1], FLOOR), torch.zeros(1, 1, 3))


def test_background_mix_subtracts_and_keeps_the_floor():
    x = renders()
    aug = augment(background_mix_quantiles=[0.001, 0.05, 0.1, 0.2], render_log_floor=FLOOR)
    bg = aug.background(x)
    out = aug.view(x, bg, gen(4))
    assert (out[:, 0] >= -1e-6).all() and (out[:, 0] <= x[:, 0] + 1e-5).all()
    assert (out[:, 0] < x[:, 0] - 1e-3).any() and torch.equal(out[:, 1:], x[:, 1:])
    # evaluation: exactly the mean mix, in linear space
    plain = aug.plain(x, bg)
    expect = from_linear(to_linear(x[:, :1], FLOOR) - bg.mean(1)[:, None, :, None], FLOOR)
    assert torch.allclose(plain[:, :1], expect, atol=1e-6)
    assert not torch.equal(aug.view(x, bg, gen(5)), out)  # random weights per draw


def test_log_space_options_need_the_floor_and_a_clipped_log10_representation():
    with pytest.raises(ConfigError, match="models/m/global_scale_sigma"):
        augment(global_scale_sigma=0.05)
    cfg = validate_config({"representations": {"r": {"log": "log1p1000"},
                                                "c": {"log": "clipped_log10", "log_floor": 1e-3}},
                           "models": {"a": {"representation": "r",
                                            "background_mix_quantiles": [0.1]},
                                      "ok": {"representation": "c", "mass_scale_sigma": 0.1},
                                      "mx": {"representation": "r", "sample_mix_p": 0.5,
                                             "sample_mix_mode": "max"}}})
    with pytest.raises(ConfigError, match="models/a/background_mix_quantiles.*log1p1000"):
        check_augment(cfg, "a", resolve_model(cfg, "a"))
    check_augment(cfg, "ok", resolve_model(cfg, "ok"))
    # the augmentation works in the representation's log units
    assert CachedAugment.from_settings(model_settings(resolve_model(cfg, "ok"))).floor == 1e-3
    check_augment(cfg, "mx", resolve_model(cfg, "mx"))
    with pytest.raises(ConfigError, match="models/mx/sample_mix_mode"):
        check_augment({**cfg, "task": "multiclass"}, "mx", resolve_model(cfg, "mx"))


# --- sample mixing -----------------------------------------------------------------------

def test_max_mix_takes_the_label_union_and_the_image_max():
    x, y = renders(n=32), (torch.rand(32, 4, generator=torch.Generator().manual_seed(0)) > 0.6)
    y = y.float()
    mx, my, _ = sample_mix(x, y, None, 1.0, "max", gen(6))
    assert set(my.unique().tolist()) <= {0.0, 1.0} and (my >= y).all() and my.sum() > y.sum()
    partners = [j for i in range(32) for j in range(32) if torch.equal(mx[i], x[i].maximum(x[j]))]
    assert len(partners) >= 32
    same_x, same_y, _ = sample_mix(x, y, None, 0.0, "max", gen(6))
    assert torch.equal(same_x, x) and torch.equal(same_y, y)
    meanx, _, _ = sample_mix(x, y, None, 1.0, "mean", gen(6))
    assert torch.allclose(meanx, (x + x[torch.randperm(32, generator=_perm_gen(6))]) / 2)


def _perm_gen(seed: int) -> torch.Generator:
    """The generator state sample_mix draws its partners from (after the 32 coin flips)."""
    g = gen(seed)
    torch.rand(32, generator=g)
    return g


def test_mix_probability_and_multiclass_labels():
    x, y = renders(n=400, m=2, x=4), torch.eye(4)[torch.arange(400) % 4]
    mx, my, _ = sample_mix(x, y, None, 0.3, "mean", gen(7))
    changed = (mx != x).flatten(1).any(1).float().mean()
    assert 0.2 < changed < 0.35
    assert torch.allclose(sample_mix(x, y, None, 1.0, "mean", gen(7), multiclass=True)[1].sum(1),
                          torch.ones(400))
    with pytest.raises(ConfigError, match="sample_mix_mode"):
        train_model(x[:8], y[:8], x[8:12], y[8:12],
                    settings(backbone="conv1d", epochs=1, batch_size=4, time_resize=None, seed=0,
                             sample_mix_p=0.5, sample_mix_mode="max"), "multiclass")


# --- defaults leave training and prediction alone; options reach training -------------------

def toy(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    x = renders(n=n, m=6, x=32, seed=seed)[:, :1].half()
    y = (torch.rand(n, 2, generator=torch.Generator().manual_seed(seed)) > 0.5).float()
    for j in range(2):
        x[y[:, j] == 1, 0, 2 * j, 10:20] = 1.0
    return x, y


def tiny(**keys) -> ModelSettings:
    return settings(backbone="conv1d", net_width=8, epochs=2, batch_size=4, time_resize=None,
                    seed=1, **keys)


def test_defaults_train_the_same_weights_as_every_option_explicitly_off():
    x, y = toy()
    absent = ModelSettings.with_defaults({"name": "m", "representation": "r",
                                          "backbone": "conv1d", "net_width": 8, "epochs": 2,
                                          "batch_size": 4, "time_resize": None, "seed": 1,
                                          "mixup_p": 0.5})
    explicit = ModelSettings.with_defaults({**absent.__dict__, **OFF})
    assert not CachedAugment.from_settings(absent).active
    a = train_model(x[:12], y[:12], x[12:], y[12:], absent, "multilabel")
    b = train_model(x[:12], y[:12], x[12:], y[12:], explicit, "multilabel")
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    on = train_model(x[:12], y[:12], x[12:], y[12:], tiny(mixup_p=0.5, scan_jitter=2),
                     "multilabel")
    assert not all(torch.equal(a.state_dict[k], on.state_dict[k]) for k in a.state_dict)


def test_every_option_trains_and_validates_on_the_strided_grid():
    x, y = toy()
    keys = {"scan_jitter": 2, "scan_stride": 2, "render_log_floor": FLOOR,
            "mass_scale_sigma": 0.2, "global_scale_sigma": 0.05,
            "background_mix_quantiles": [0.001, 0.05, 0.1, 0.2], "sample_mix_p": 0.5,
            "sample_mix_mode": "max"}
    r1 = train_model(x[:12], y[:12], x[12:], y[12:], tiny(**keys), "multilabel")
    r2 = train_model(x[:12], y[:12], x[12:], y[12:], tiny(**keys), "multilabel")
    assert all(torch.equal(r1.state_dict[k], r2.state_dict[k]) for k in r1.state_dict)  # seeded
    assert all(math.isfinite(row["val_loss"]) for row in r1.history)


# --- TTA over seeded augmented renderings --------------------------------------------------

def test_tta_views_are_seeded_and_differ_from_the_plain_view():
    x, y = toy()
    s = tiny(scan_jitter=3, render_log_floor=FLOOR, mass_scale_sigma=0.3,
             background_mix_quantiles=[0.05, 0.2])
    result = train_model(x[:12], y[:12], x[12:], y[12:], s, "multilabel")
    from spectrovision.learn.models import create_model

    model = create_model(s, (1, 6, 32), 2)
    model.load_state_dict(result.state_dict)
    aug = CachedAugment.from_settings(s)
    bg = aug.background(x)
    plain = predict_logits(model, x, [32], 5, augment=aug, background=bg)
    views = [predict_logits(model, x, [32], 5, augment=aug, background=bg, n_views=4, seed=9)
             for _ in range(2)]
    np.testing.assert_array_equal(views[0], views[1])
    assert not np.allclose(views[0], plain)
    other = predict_logits(model, x, [32], 5, augment=aug, background=bg, n_views=4, seed=10)
    assert not np.array_equal(other, views[0])
    # the plain view is the mean background mix, not the stored images
    assert not np.allclose(plain, predict_logits(model, x, [32], 5))


def test_run_predict_records_the_views(tmp_path):
    import pandas as pd

    from spectrovision.learn.checkpoint import save_weights

    x, y = toy(n=10)
    s = tiny(scan_jitter=2, scan_stride=2)
    np.save(tmp_path / "stack.npy", x.numpy())
    ids = [f"S{i}" for i in range(10)]
    pd.DataFrame({"sample_id": ids}).to_csv(tmp_path / "stack.csv", index=False)
    pd.DataFrame({"sample_id": ids, "fold": [i % 2 for i in range(10)]}).to_csv(
        tmp_path / "folds.csv", index=False)
    from spectrovision.learn.models import create_model

    model = create_model(s, CachedAugment.from_settings(s).image_shape((1, 6, 32)), 2)
    save_weights(tmp_path / "model.pt", state_dict=model.state_dict(),
                 settings={**s.__dict__}, task="multilabel", labels=["a", "b"],
                 image_shape=(1, 6, 16), train_width=16, fold=0, n_meta=0, scaler=None)
    _, bundle = load_trained(tmp_path / "model.pt")
    assert list(bundle["image_shape"]) == [1, 6, 16]
    out = {k: str(tmp_path / f"{k}.x") for k in ("oof", "test", "info")}
    inputs = {"weights": tmp_path / "model.pt", "stacks": [tmp_path / "stack.npy"],
              "stack_ids": [tmp_path / "stack.csv"], "folds": tmp_path / "folds.csv"}
    base = {"tta_n_widths": 2, "tta_step": 4, "batch_size": 4}
    plain = run_predict(inputs=inputs, outputs=out, settings=base, fold=0, unlabelled=[])
    assert "tta_augment" not in plain and "tta_augment" not in json.loads(
        open(out["info"]).read())
    first = pd.read_parquet(out["oof"])
    info = run_predict(inputs=inputs, outputs=out,
                       settings={**base, "tta_augment_n": 3, "tta_augment_seed": 1}, fold=0,
                       unlabelled=[])
    assert info["tta_augment"]["n_views"] == 3 and info["tta_augment"]["forward_passes"] == 6
    assert json.loads(open(out["info"]).read())["tta_augment"]["scan_jitter"] == 2
    assert not np.allclose(pd.read_parquet(out["oof"])[["a", "b"]], first[["a", "b"]])
    typed = PredictSettings.with_defaults(base)
    assert typed.tta_augment_n == 0 and typed.tta_augment_seed == 0
