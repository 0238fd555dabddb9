"""Recipe switches: each changes what it should (augmentations, losses, schedule)."""

from __future__ import annotations

import math

import pytest
import torch

from spectrovision.learn.augment import (mixup, random_time_width, resize_time, time_warp,
                                   training_width, tta_time_sizes)
from spectrovision.learn.loop import lr_at
from spectrovision.learn.losses import bce_loss, eval_loss, focal_loss, smooth_binary
from spectrovision.learn.losses import make_loss as make_typed
from spectrovision.learn.settings import ModelSettings


def make_loss(keys: dict, task: str):
    return make_typed(ModelSettings.with_defaults({"name": "m", "representation": "r", **keys}),
                      task)


def test_random_time_width_covers_the_range_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    widths = [random_time_width(128, 256, g) for _ in range(400)]
    assert min(widths) >= 128 and max(widths) <= 256
    assert len(set(widths)) > 50
    g2 = torch.Generator().manual_seed(0)
    assert widths[:20] == [random_time_width(128, 256, g2) for _ in range(20)]


def test_resize_time_changes_only_the_time_axis():
    x = torch.rand(2, 3, 16, 40)
    y = resize_time(x, 64)
    assert y.shape == (2, 3, 16, 64)
    assert resize_time(x, 40) is x
    # a constant row stays constant: no mixing along the mass axis
    x[:, :, 5] = 7.0
    assert torch.allclose(resize_time(x, 23)[:, :, 5], torch.full((2, 3, 23), 7.0))


def test_tta_widths_are_centred_on_the_training_width():
    assert tta_time_sizes(192, 5, 32) == [128, 160, 192, 224, 256]
    assert tta_time_sizes(32, 2, 8) == [28, 36]
    assert tta_time_sizes(100, 1, 32) == [100]
    assert training_width([128, 256], 192) == 192
    assert training_width(None, 96) == 96
    with pytest.raises(ValueError, match="tta_step"):
        tta_time_sizes(16, 5, 8)


def test_time_warp_moves_a_peak_later_for_alpha_above_one_and_earlier_below():
    x = torch.zeros(1, 1, 4, 100)
    x[..., 50] = 1.0
    g = torch.Generator().manual_seed(0)
    later = time_warp(x, [2.0, 2.0], g)
    earlier = time_warp(x, [0.5, 0.5], g)
    same = time_warp(x, [1.0, 1.0], g)
    centre = lambda img: float((img[0, 0, 0] * torch.arange(100)).sum() / img[0, 0, 0].sum())
    assert centre(later) > 60 and centre(earlier) < 40
    assert torch.allclose(same, x, atol=1e-6)
    assert later.shape == x.shape


def test_mixup_off_leaves_batch_and_on_takes_elementwise_max_of_labels():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 4, 6)
    y = (torch.rand(8, 3) > 0.5).float()
    same_x, same_y, mixed = mixup(x, y, 0.0, g)
    assert not mixed and same_x is x and same_y is y
    mx, my, mixed = mixup(x, y, 1.0, g)
    assert mixed
    assert set(my.unique().tolist()) <= {0.0, 1.0}
    assert (my >= y).all() and my.sum() >= y.sum()
    # each mixed image is a convex combination with fraction in [0.4, 0.6]
    for i in range(8):
        diffs = [(mx[i] - (lam * x[i] + (1 - lam) * x[j])).abs().max().item()
                 for j in range(8) for lam in torch.linspace(0.4, 0.6, 201).tolist()]
        assert min(diffs) < 2e-3
    mcx, mcy, _ = mixup(x, torch.eye(3)[torch.arange(8) % 3], 1.0, g, multiclass=True)
    assert torch.allclose(mcy.sum(1), torch.ones(8))


def test_mixup_probability_is_respected():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(4, 1, 2, 2), torch.zeros(4, 2)
    rate = sum(mixup(x, y, 0.2, g)[2] for _ in range(2000)) / 2000
    assert 0.16 < rate < 0.24


def test_label_smoothing_moves_the_optimum_inside_zero_one():
    assert torch.allclose(smooth_binary(torch.tensor([0.0, 1.0]), 0.1), torch.tensor([0.05, 0.95]))
    logits = torch.tensor([[10.0]], requires_grad=True)
    bce_loss(0.1)(logits, torch.ones(1, 1)).backward()
    assert logits.grad.item() > 0  # smoothed: a very confident logit is pushed back down
    plain = torch.tensor([[10.0]], requires_grad=True)
    bce_loss(0.0)(plain, torch.ones(1, 1)).backward()
    assert plain.grad.item() < 0


def test_focal_loss_down_weights_easy_examples():
    y = torch.tensor([[1.0, 1.0]])
    logits = torch.tensor([[4.0, -1.0]])  # easy (right, confident) and hard (wrong)
    per_bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    ratio_easy = focal_loss(2.0)(logits[:, :1], y[:, :1]) / per_bce[0, 0]
    ratio_hard = focal_loss(2.0)(logits[:, 1:], y[:, 1:]) / per_bce[0, 1]
    assert ratio_easy < 0.01 < 0.5 < ratio_hard
    assert torch.isclose(focal_loss(0.0)(logits, y), bce_loss()(logits, y))


def test_make_loss_picks_by_settings_and_task():
    logits, y = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]])
    assert torch.isclose(make_loss({"loss": "bce"}, "multilabel")(logits, y), bce_loss()(logits, y))
    assert torch.isclose(make_loss({"loss": "focal", "focal_gamma": 2.0}, "multilabel")(logits, y),
                         focal_loss(2.0)(logits, y))
    ce = make_loss({"loss": "focal"}, "multiclass")(logits, y)
    assert torch.isclose(ce, torch.nn.functional.cross_entropy(logits, torch.tensor([0])))
    assert torch.isclose(eval_loss(logits, y, "multiclass"), ce)


def test_warmup_then_cosine_schedule():
    peak, warm, total = 1e-3, 10, 110
    lrs = [lr_at(s, peak, warm, total) for s in range(total)]
    assert lrs[0] == pytest.approx(peak / 10) and lrs[9] == pytest.approx(peak)
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))  # linear warm-up
    assert lrs[60] == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # cosine decay
    assert lrs[-1] < peak * 0.01
    assert lr_at(0, peak, 0, 10) == pytest.approx(peak)


def test_cosine_warm_restarts_split_the_decay_into_equal_cycles():
    peak, warm, total = 1e-3, 10, 110  # 100 steps after warm-up: 4 cycles of 25
    one = [lr_at(s, peak, warm, total) for s in range(total)]
    four = [lr_at(s, peak, warm, total, 4) for s in range(total)]
    assert four[:10] == one[:10]  # the same warm-up
    assert one == [lr_at(s, peak, warm, total, 1) for s in range(total)]
    for k in range(4):
        start = warm + 25 * k
        assert four[start] == pytest.approx(peak)  # each cycle restarts at the peak
        cycle = four[start:start + 25]
        assert all(a > b for a, b in zip(cycle, cycle[1:]))  # and decays within it
        assert cycle[-1] < peak * 0.01
        # the cycle is the one-cycle cosine compressed 4x
        assert four[start + 10] == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * 0.4)))
    assert four[-1] < peak * 0.01 and max(four[11:]) == pytest.approx(peak)
