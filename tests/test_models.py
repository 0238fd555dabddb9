"""Networks: heads, input adapter, local weights, any width along time."""

from __future__ import annotations

import pytest
import torch

from spectrovision.errors import InputError
from spectrovision.learn.models import HEADS, backbone_channels
from spectrovision.learn.models import create_model as create_typed
from spectrovision.learn.settings import ModelSettings

BASE = {"backbone": "resnet10t", "head": "pool", "drop_rate": 0.0, "weights": None,
        "in_chans": None}


def settings(keys: dict) -> ModelSettings:
    return ModelSettings.with_defaults({"name": "m", "representation": "r", **keys})


def create_model(keys: dict, *args, **kwargs):
    return create_typed(settings(keys), *args, **kwargs)


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("width", [24, 40])
def test_every_head_gives_one_logit_per_label_at_any_time_width(head, width):
    torch.manual_seed(0)
    model = create_model({**BASE, "head": head}, (2, 32, 32), n_outputs=5).eval()
    out = model.forward_heads(torch.randn(3, 2, 32, width))
    assert out["logits"].shape == (3, 5)
    if head == "sed":  # per-time-bin logits, the clip logit is their attention-weighted sum
        frames = out["frame_logits"]
        assert frames.shape[:2] == (3, 5) and frames.shape[2] >= 1
        assert (out["logits"] <= frames.max(-1).values + 1e-5).all()
        assert (out["logits"] >= frames.min(-1).values - 1e-5).all()
    else:
        assert set(out) == {"logits"}


def test_time_avg_head_keeps_the_mass_axis():
    torch.manual_seed(0)
    pool = create_model(BASE, (1, 64, 32), 3).eval()
    tavg = create_model({**BASE, "head": "time_avg"}, (1, 64, 32), 3).eval()
    x = torch.randn(2, 1, 64, 32)
    n_features = pool.embed(x).shape[1]
    fmap_height = tavg.feature_map(x).shape[2]
    assert fmap_height > 1
    assert tavg.embed(x).shape[1] == n_features * fmap_height
    # averaging over time only: the embedding does not change when time columns are permuted
    # at the feature-map level, but it does depend on where along mass the signal is
    fmap = tavg.feature_map(x)
    assert torch.allclose(tavg.head.embed(fmap), tavg.head.embed(fmap.flip(3)), atol=1e-5)
    assert not torch.allclose(tavg.head.embed(fmap), tavg.head.embed(fmap.flip(2)), atol=1e-3)


def test_extra_channels_go_through_a_trainable_1x1_adapter():
    model = create_model(BASE, (4, 32, 32), 2)
    assert backbone_channels(settings(BASE), 4) == 3
    conv = model.adapter.conv
    assert conv.kernel_size == (1, 1) and conv.in_channels == 4 and conv.out_channels == 3
    assert conv.weight.requires_grad
    single = create_model(BASE, (1, 32, 32), 2)
    assert isinstance(single.adapter, torch.nn.Identity)
    chosen = create_model({**BASE, "in_chans": 5}, (2, 32, 32), 2)
    assert chosen.adapter.conv.out_channels == 5


def test_local_weights_file_is_loaded_and_a_missing_one_is_a_clear_error(tmp_path):
    torch.manual_seed(1)
    donor = create_model(BASE, (1, 32, 32), 2)
    path = tmp_path / "resnet10t.pt"
    torch.save(donor.backbone.state_dict(), path)
    torch.manual_seed(2)
    fresh = create_model(BASE, (1, 32, 32), 2)
    loaded = create_model({**BASE, "weights": str(path)}, (1, 32, 32), 2)
    key = "conv1.0.weight"
    assert not torch.equal(fresh.backbone.state_dict()[key], donor.backbone.state_dict()[key])
    assert torch.equal(loaded.backbone.state_dict()[key], donor.backbone.state_dict()[key])
    with pytest.raises(InputError, match="never downloaded"):
        create_model({**BASE, "weights": str(tmp_path / "absent.pt")}, (1, 32, 32), 2)


def test_unknown_backbone_or_head_is_a_clear_error():
    with pytest.raises(ValueError, match="timm.list_models"):
        create_model({**BASE, "backbone": "no_such_net"}, (1, 32, 32), 2)
    with pytest.raises(ValueError, match="unknown head"):
        create_model({**BASE, "head": "nope"}, (1, 32, 32), 2)


def test_metadata_branch_joins_the_pooled_features():
    torch.manual_seed(0)
    model = create_model(BASE, (1, 32, 32), 3, n_meta=4).eval()
    x, meta = torch.randn(2, 1, 32, 32), torch.randn(2, 4)
    assert model(x, meta).shape == (2, 3)
    assert not torch.allclose(model(x, meta), model(x, meta + 1.0))
    with pytest.raises(ValueError, match="meta"):
        model(x)
