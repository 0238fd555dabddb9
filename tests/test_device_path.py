"""The accelerator branches (bf16 autocast, channels_last, the device-resident image stack,
host-drawn augmentations) forced on the CPU with SPECTROVISION_ACCELERATE=1, and the
stack reader that fills the tensor training keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from spectrovision.errors import InputError
from spectrovision.learn import imageset
from spectrovision.learn.augment import CachedAugment, batch_generator
from spectrovision.learn.device import ACCELERATE_ENV, DevicePath, device_path
from spectrovision.learn import loop
from spectrovision.learn.loop import train_model
from spectrovision.learn.models import create_model
from spectrovision.learn.predict import predict_logits
from spectrovision.learn.settings import ModelSettings
from test_train import SETTINGS

# bf16 keeps 8 bits of mantissa: a model's logits under autocast stay within this of fp32
BF16_LOGIT_TOL = 0.05


def toy_batch(n: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, 16, 24) float16 images, label j lighting mass row 3j."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.5).astype(np.float32)
    x = rng.random((n, 2, 16, 24)).astype(np.float32) * 0.2
    for j in range(3):
        x[y[:, j] == 1, 0, 3 * j, 8:16] += 1.0
    return torch.from_numpy(x).half(), torch.from_numpy(y)


def settings(**changes) -> ModelSettings:
    return ModelSettings(**{**SETTINGS, "epochs": 2, "time_resize": None, **changes})


def test_the_switch_turns_every_branch_on_only_when_forced(monkeypatch):
    monkeypatch.delenv(ACCELERATE_ENV, raising=False)
    off = device_path(True, False, "cpu")
    assert (off.amp, off.channels_last, off.resident) == (False, False, False)
    # channels_last is not an accelerator branch: the CPU keeps it when the settings ask
    assert device_path(True, True, "cpu").channels_last is True
    monkeypatch.setenv(ACCELERATE_ENV, "1")
    on = device_path(True, True, "cpu")
    assert (on.amp, on.channels_last, on.resident) == (True, True, True)
    # the model's settings still decide amp and channels_last
    partial = device_path(False, True, "cpu")
    assert (partial.amp, partial.channels_last, partial.resident) == (False, True, True)
    x = torch.zeros(2, 3, 4, 5)
    assert on.memory_format(x).is_contiguous(memory_format=torch.channels_last)
    assert not off.memory_format(x).is_contiguous(memory_format=torch.channels_last)


def conv_weights(state: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    return [v for k, v in state.items() if v.dim() == 4 and k.endswith("weight")]


def test_channels_last_on_the_cpu_keeps_the_numbers_of_a_contiguous_training(monkeypatch):
    monkeypatch.delenv(ACCELERATE_ENV, raising=False)
    x, y = toy_batch(32)
    runs = {cl: train_model(x[:24], y[:24], x[24:], y[24:], settings(channels_last=cl),
                            "multilabel") for cl in (False, True)}
    # the 2-D net really trained in channels_last, and only its last float bits moved
    kept = conv_weights(runs[True].state_dict)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in kept)
    assert sum(not w.is_contiguous() for w in kept) >= 10  # every 3x3 kernel
    assert all(w.is_contiguous() for w in conv_weights(runs[False].state_dict))
    losses = {cl: [h["val_loss"] for h in r.history] for cl, r in runs.items()}
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
    # a 1-D net has no 2-D convolution: the same bits either way
    one_d = {cl: train_model(x[:24], y[:24], x[24:], y[24:],
                             settings(channels_last=cl, backbone="conv1d", head="pool",
                                      net_width=8), "multilabel") for cl in (False, True)}
    for key, value in one_d[False].state_dict.items():
        assert torch.equal(value, one_d[True].state_dict[key]), key


def test_bf16_predictions_stay_within_the_stated_tolerance_of_fp32():
    x, _ = toy_batch()
    torch.manual_seed(0)
    model = create_model(settings(), (2, 16, 24), 3)
    fp32 = predict_logits(model, x, [20, 24, 28], 8)
    bf16 = predict_logits(model, x, [20, 24, 28], 8, amp=True)
    gap = np.abs(bf16 - fp32).max()
    assert 0 < gap <= BF16_LOGIT_TOL  # > 0: autocast really ran in bf16


def test_channels_last_predictions_equal_the_contiguous_ones():
    x, _ = toy_batch()
    torch.manual_seed(0)
    model = create_model(settings(), (2, 16, 24), 3)
    plain = predict_logits(model, x, [24], 8)
    model = model.to(memory_format=torch.channels_last)
    last = predict_logits(model, x, [24], 8, channels_last=True)
    np.testing.assert_allclose(last, plain, atol=1e-5)


def test_the_resident_stack_trains_to_the_same_bits_and_bf16_training_stays_close(monkeypatch):
    x, y = toy_batch(32)
    aug = {"scan_jitter": 2, "sample_mix_p": 0.5, "mixup_p": 0.5, "time_warp": [0.8, 1.25]}
    monkeypatch.delenv(ACCELERATE_ENV, raising=False)
    host = train_model(x[:24], y[:24], x[24:], y[24:], settings(amp=False, channels_last=False,
                                                                **aug), "multilabel")
    monkeypatch.setenv(ACCELERATE_ENV, "1")
    placed = []
    real_place = DevicePath.place

    def spy(self, tensor):
        placed.append(tensor is not None)
        return real_place(self, tensor)

    monkeypatch.setattr(DevicePath, "place", spy)
    resident = train_model(x[:24], y[:24], x[24:], y[24:],
                           settings(amp=False, channels_last=False, **aug), "multilabel")
    assert sum(placed) == 4  # images and labels of both sets went through the device path
    for key, value in host.state_dict.items():
        assert torch.equal(value, resident.state_dict[key]), key
    assert [h["val_loss"] for h in host.history] == [h["val_loss"] for h in resident.history]
    accel = train_model(x[:24], y[:24], x[24:], y[24:], settings(**aug), "multilabel")
    gaps = [abs(a["val_loss"] - b["val_loss"]) for a, b in zip(host.history, accel.history)]
    assert 0 < max(gaps) <= BF16_LOGIT_TOL


def test_augmentations_draw_the_same_numbers_wherever_the_batch_lives():
    augment = CachedAugment(scan_jitter=3, scan_stride=2, floor=1e-3, mass_scale_sigma=0.2,
                            global_scale_sigma=0.1, quantiles=(0.1, 0.5), mix_p=0.5,
                            mix_mode="max")
    x = torch.rand(6, 1, 8, 20)
    background = augment.background(x)
    states = []
    for device in ("cpu", "meta"):  # meta: a device that holds shapes only
        loop_gen = torch.Generator().manual_seed(11)
        gen = batch_generator(loop_gen, device)
        assert gen.device.type == "cpu"
        batch, bg = x.to(device), background.to(device)
        view = augment.view(batch, bg, gen)
        mixed, _, _ = augment.mix(view, torch.zeros(6, 2, device=device), None, gen, False)
        assert mixed.shape == (6, 1, 8, 10) and mixed.device.type == device
        states.append(gen.get_state())
    assert torch.equal(states[0], states[1])  # the same draws, in the same order


def write_stack(root, name, images, ids):
    np.save(root / f"{name}.npy", images)
    pd.DataFrame({"sample_id": ids}).to_csv(root / f"{name}.csv", index=False)
    return root / f"{name}.npy", root / f"{name}.csv"


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_stack_index_reads_the_rows_asked_for_in_their_order(tmp_path, monkeypatch, dtype):
    monkeypatch.setattr(imageset, "CHUNK_BYTES", 3 * 2 * 4 * 5 * 4)  # 3 float32 rows a chunk
    rng = np.random.default_rng(0)
    a = rng.random((7, 2, 4, 5)).astype(dtype)
    b = rng.random((4, 2, 4, 5)).astype(dtype)
    sa, ca = write_stack(tmp_path, "a", a, [f"A{i}" for i in range(7)])
    sb, cb = write_stack(tmp_path, "b", b, ["NA", "B1", "B2", "B3"])
    index = imageset.open_stacks([sa, sb], [ca, cb])
    wanted = ["A6", "B1", "A0", "A1", "A2", "A3", "NA", "A4", "A2"]
    got = index.select(wanted)
    expected = np.stack([a[6], b[1], a[0], a[1], a[2], a[3], b[0], a[4], a[2]]).astype(np.float16)
    assert got.dtype == torch.float16 and index.shape == (2, 4, 5)
    np.testing.assert_array_equal(got.numpy(), expected)
    loaded = imageset.load_image_set([sa, sb], [ca, cb], keep={"B3", "A5"})
    assert loaded.ids == ["A5", "B3"]
    np.testing.assert_array_equal(loaded.images.numpy(), np.stack([a[5], b[3]]).astype(np.float16))
    with pytest.raises(InputError, match="no image"):
        index.select(["A9"])


def test_a_truncated_or_mismatched_stack_is_named(tmp_path):
    rng = np.random.default_rng(0)
    sa, ca = write_stack(tmp_path, "a", rng.random((3, 1, 4, 5)).astype(np.float16),
                         ["x", "y", "z"])
    sb, cb = write_stack(tmp_path, "b", rng.random((2, 1, 4, 6)).astype(np.float16), ["u", "v"])
    with pytest.raises(InputError, match="shape"):
        imageset.open_stacks([sa, sb], [ca, cb])
    index = imageset.open_stacks([sa], [ca])
    data = sa.read_bytes()
    sa.write_bytes(data[:-10])
    with pytest.raises(InputError, match="ends before its last image"):
        index.select(["z"])


@pytest.mark.parametrize("n", [9, 17, 25, 16, 2])
def test_every_training_sample_is_in_exactly_one_batch(n):
    # a last batch of one sample joins the one before it (batch norm needs two); before,
    # the merged batch overwrote the batch before that one (17 samples: the first eight lost,
    # the second eight twice) and two batches raised an IndexError
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    batches = loop._batches(8, order)
    assert torch.equal(torch.cat(batches), order)
    assert min(len(b) for b in batches) >= 2
