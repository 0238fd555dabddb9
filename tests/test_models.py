"""Networks: heads, input adapter, local weights, any width along time, 1-D backbones."""

from __future__ import annotations

import pytest
import torch

from spectrovision.errors import ConfigError, InputError
from spectrovision.learn import cost
from spectrovision.learn.models import HEADS, backbone_channels
from spectrovision.learn.models import create_model as create_typed
from spectrovision.learn.nets1d import NETS1D
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


def test_unknown_backbone_or_head_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"'models/\w+/backbone': 'no_such_net'.*timm.list_models"):
        create_model({**BASE, "backbone": "no_such_net"}, (1, 32, 32), 2)
    with pytest.raises(ConfigError, match=r"'models/\w+/head': unknown head 'nope'"):
        create_model({**BASE, "head": "nope"}, (1, 32, 32), 2)
    with pytest.raises(ConfigError, match=r"'models/\w+/metadata_columns': the sed head"):
        create_model({**BASE, "head": "sed"}, (1, 32, 32), 2, n_meta=2)


def test_metadata_branch_joins_the_pooled_features():
    torch.manual_seed(0)
    model = create_model(BASE, (1, 32, 32), 3, n_meta=4).eval()
    x, meta = torch.randn(2, 1, 32, 32), torch.randn(2, 4)
    assert model(x, meta).shape == (2, 3)
    assert not torch.allclose(model(x, meta), model(x, meta + 1.0))
    with pytest.raises(ValueError, match="meta"):
        model(x)


# --- 1-D backbones -----------------------------------------------------------------------

@pytest.mark.parametrize("head", ["pool", "sed"])
@pytest.mark.parametrize("backbone", sorted(NETS1D))
def test_each_1d_backbone_runs_at_two_time_widths(backbone, head):
    torch.manual_seed(0)
    if backbone == "massconv1d" and head == "sed":
        for other in ("sed", "time_avg"):
            with pytest.raises(ConfigError, match="models/m/head.*one feature vector per "
                                                  "m/z.*Fix: use head 'pool'"):
                create_model({**BASE, "backbone": backbone, "head": other}, (2, 16, 32), 5)
        return
    model = create_model({**BASE, "backbone": backbone, "head": head}, (2, 16, 32), 5).eval()
    assert isinstance(model.adapter, torch.nn.Identity)  # channels x mass = input channels
    for width in (24, 40):
        x = torch.randn(3, 2, 16, width)
        fmap = model.feature_map(x)
        if backbone == "massconv1d":  # a vector per m/z row, whatever the width
            assert fmap.shape == (3, model.backbone.n_features, 16, 1)
            assert model(x).shape == (3, 5)
            continue
        # a vector per column (per 4 columns for mzconv1d's two strided convolutions)
        n_cols = -(-width // model.backbone.time_stride)
        assert fmap.shape == (3, model.backbone.n_features, 1, n_cols)
        out = model.forward_heads(x)
        assert out["logits"].shape == (3, 5)
        if head == "sed":
            assert out["frame_logits"].shape == (3, 5, n_cols)
    if head == "pool":  # max + mean pooling doubles the embedding where the net asks
        pooled = model.embed(torch.randn(2, 2, 16, 32)).shape[1]
        assert pooled == len(model.backbone.pooling) * model.backbone.n_features


@pytest.mark.parametrize("backbone", sorted(NETS1D))
def test_1d_backbone_reads_every_mass_row_and_the_column_position(backbone):
    torch.manual_seed(0)
    model = create_model({**BASE, "backbone": backbone}, (1, 8, 20), 2).eval()
    x = torch.zeros(1, 1, 8, 20)
    moved = x.clone()
    moved[0, 0, 7, 3] = 1.0  # the last mass row matters (channels x mass flattened)
    assert not torch.allclose(model(x), model(moved))
    early, late = x.clone(), x.clone()
    early[0, 0, 2, 2], late[0, 0, 2, 17] = 1.0, 1.0  # position matters despite global pooling
    assert not torch.allclose(model(early), model(late))


def test_mzconv1d_shares_its_trace_weights_across_mz_and_then_mixes_the_rows():
    from spectrovision.learn.nets1d import MZ_MIX, dilations_below

    torch.manual_seed(0)
    model = create_model({**BASE, "backbone": "mzconv1d", "net_width": 16}, (2, 12, 40),
                         3).eval()
    net = model.backbone
    assert dilations_below(40) == (1, 2, 4, 8, 16, 32)  # the widest spans the axis
    assert [conv.dilation for conv in net.branches] == [(1, d) for d in (1, 2, 4, 8, 16, 32)]
    x = torch.randn(2, 2, 12, 40)
    perm = torch.randperm(12)
    with torch.no_grad():
        # one trace's features depend on that trace only, with the same weights for every
        # m/z: permuting the m/z rows permutes the features before the map across m/z
        torch.testing.assert_close(net.traces(x[:, :, perm]), net.traces(x)[:, :, perm])
        # ...and the learned map across m/z is where the rows' order matters
        assert not torch.allclose(model(x[:, :, perm]), model(x))
    assert net.n_features == 16 * MZ_MIX
    assert net.mix.weight.shape == (MZ_MIX, 12)  # m/z rows in, mixed rows out
    # parameters: the per-trace convolutions do not grow with the number of m/z rows
    big = create_model({**BASE, "backbone": "mzconv1d", "net_width": 16}, (2, 96, 40), 3)
    conv = sum(p.numel() for n, p in big.backbone.named_parameters() if "mix" not in n)
    assert conv == sum(p.numel() for n, p in net.named_parameters() if "mix" not in n)


def test_massconv1d_reads_the_columns_as_channels_and_resamples_other_widths():
    """The temperature columns are massconv1d's input channels: an image of another width
    is resampled to the rendered one, so its prediction equals that of the image resampled
    by hand, and differs from the image cropped to the rendered width."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = create_model({**BASE, "backbone": "massconv1d", "net_width": 16}, (1, 24, 20),
                         3).eval()
    x = torch.rand(2, 1, 24, 30)
    by_hand = F.interpolate(x, size=(24, 20), mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(by_hand))
        assert not torch.allclose(model(x), model(x[..., :20]))
    assert model.backbone.stem[0].in_channels == 20 + 1  # columns + the m/z coordinate


def test_net_width_sizes_the_1d_backbones_only():
    small = create_model({**BASE, "backbone": "conv1d", "net_width": 16}, (1, 8, 20), 2)
    default = create_model({**BASE, "backbone": "conv1d"}, (1, 8, 20), 2)
    assert small.backbone.n_features == 16 and default.backbone.n_features == 64
    assert create_model({**BASE, "backbone": "gru1d", "net_width": 8}, (1, 8, 20),
                        2).backbone.n_features == 16  # both directions
    with pytest.raises(ConfigError, match="models/m/net_width.*multiple of"):
        create_model({**BASE, "backbone": "transformer1d", "net_width": 30}, (1, 8, 20), 2)
    with pytest.raises(ConfigError, match="models/m/net_width.*1-D backbones only"):
        create_model({**BASE, "net_width": 16}, (1, 32, 32), 2)


def test_1d_backbone_refuses_weights_in_chans_and_time_avg_naming_the_key(tmp_path):
    net = {**BASE, "backbone": "conv1d"}
    with pytest.raises(ConfigError, match="models/m/weights.*weights: null"):
        create_model({**net, "weights": str(tmp_path / "w.pt")}, (1, 8, 20), 2)
    with pytest.raises(ConfigError, match="models/m/in_chans.*in_chans: null"):
        create_model({**net, "in_chans": 3}, (2, 8, 20), 2)
    with pytest.raises(ConfigError, match="models/m/head.*'pool' or 'sed'"):
        create_model({**net, "head": "time_avg"}, (1, 8, 20), 2)


@pytest.mark.parametrize("backbone", sorted(NETS1D))
def test_1d_backbone_takes_a_metadata_branch_with_the_pool_head(backbone):
    torch.manual_seed(0)
    model = create_model({**BASE, "backbone": backbone}, (1, 8, 20), 3, n_meta=4).eval()
    x, meta = torch.randn(2, 1, 8, 20), torch.randn(2, 4)
    assert model(x, meta).shape == (2, 3)
    assert not torch.allclose(model(x, meta), model(x, meta + 1.0))


def test_train_priority_ranks_a_2d_cnn_above_longer_1d_nets():
    """learn.cost names the registry's 1-D nets; a timm 2-D member outranks 1-D members with
    more epochs or seeds (the demo: 384 against 40), and more epochs or seeds rank higher."""
    assert cost.NET1D_BACKBONES == set(NETS1D)
    two_d = {"backbone": "resnet10t", "epochs": 24, "n_seeds": 2}
    assert cost.train_priority(two_d) == 24 * 2 * cost.TIMM_EPOCH_FACTOR
    assert cost.train_priority({"backbone": "conv1d", "epochs": 40, "n_seeds": 1}) == 40
    for net in NETS1D:
        longer = {"backbone": net, "epochs": 60, "n_seeds": 2}
        assert cost.train_priority(longer) < cost.train_priority(two_d)
        assert cost.train_priority(longer) > cost.train_priority({**longer, "n_seeds": 1})


def test_render_and_prep_priorities_rank_above_the_train_jobs_that_wait_for_them():
    """A representation's renders rank one above the costliest train job reading it (the
    score path's 1, above the analyses' 0, when no model reads it); ingest and folds one
    above every train job (1 with no models)."""
    models = {"cnn": {"backbone": "resnet10t", "epochs": 24, "n_seeds": 2,
                      "representation": "coarse"},
              "net1d": {"backbone": "conv1d", "epochs": 40, "representation": "raw"},
              "net1d_long": {"backbone": "conv1d", "epochs": 60, "representation": "raw"}}
    assert cost.render_priority(models, "coarse") == cost.train_priority(models["cnn"]) + 1
    assert cost.render_priority(models, "raw") == 61
    assert cost.render_priority(models, "tabular_only") == cost.SCORE_PATH_PRIORITY == 1
    assert cost.prep_priority(models) == cost.train_priority(models["cnn"]) + 1
    assert cost.prep_priority({}) == 1
