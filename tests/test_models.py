"""Models over the registry: shapes, parameter counts, official key names, golden outputs."""

from __future__ import annotations

import pytest
import torch

from resemotenet.models import ResEmoteNet, create_model, list_models, model_defaults
from resemotenet.utils.errors import ConfigError

OFFICIAL_KEYS = [
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv3.weight",
    "bn1.weight",
    "bn2.running_mean",
    "bn3.running_var",
    "se.fc.0.weight",
    "se.fc.2.weight",
    "fc1.weight",
    "fc2.bias",
    "fc3.weight",
    "fc4.weight",
    "fc4.bias",
] + [
    f"res_block{i}.{p}"
    for i in (1, 2, 3)
    for p in (
        "conv1.weight",
        "conv1.bias",
        "bn1.weight",
        "conv2.weight",
        "conv2.bias",
        "bn2.weight",
        "shortcut.0.weight",
        "shortcut.0.bias",
        "shortcut.1.weight",
        "shortcut.1.running_mean",
    )
]


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_full_model_parameter_count_is_the_papers():
    assert n_params(create_model("resemotenet")) == 80_238_599


@pytest.mark.parametrize(
    "name,expected",
    [
        ("resemotenet_s", 5_022_215),
        ("resemotenet_m", 20_069_383),
        ("resemotenet_t", 1_257_991),
    ],
)
def test_width_variants_parameter_counts(name, expected):
    assert n_params(create_model(name)) == expected


def test_official_key_names_present_and_complete():
    keys = set(create_model("resemotenet").state_dict())
    missing = [k for k in OFFICIAL_KEYS if k not in keys]
    assert not missing
    # nothing beyond the official names: every key starts with an official module name
    prefixes = {
        "conv1",
        "conv2",
        "conv3",
        "bn1",
        "bn2",
        "bn3",
        "se",
        "res_block1",
        "res_block2",
        "res_block3",
        "fc1",
        "fc2",
        "fc3",
        "fc4",
    }
    assert {k.split(".")[0] for k in keys} == prefixes
    assert create_model("resemotenet").se.fc[0].weight.shape == (16, 256)
    assert create_model("resemotenet").se.fc[0].bias is None


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("size,chans", [(64, 3), (48, 1)])
def test_every_model_forward_shape(name, size, chans):
    with torch.no_grad():
        m = create_model(name, num_classes=8, in_chans=chans, width=0.125).eval()
        assert m(torch.randn(2, chans, size, size)).shape == (2, 8)


def test_ablations_remove_exactly_their_part():
    full = create_model("resemotenet_s")
    nose = create_model("resemotenet_s_nose")
    nores = create_model("resemotenet_s_nores")
    plain = create_model("resemotenet_s_plain")
    assert isinstance(nose.se, torch.nn.Identity) and not isinstance(full.se, torch.nn.Identity)
    assert nores.res_block1.shortcut is None and full.res_block1.shortcut is not None
    assert plain.res_block2.shortcut is None and isinstance(plain.se, torch.nn.Identity)
    se_params = sum(p.numel() for p in full.se.parameters())
    assert n_params(full) - n_params(nose) == se_params
    assert model_defaults("resemotenet_s_plain") == {"width": 0.25, "se": False, "residual": False}


def test_unknown_model_lists_valid_names():
    with pytest.raises(ConfigError, match="valid models: .*resemotenet_s"):
        create_model("resnet50")


# Logits of the shipped weights on the shipped photo's face (box found by the Haar detector,
# 20 % margin), recorded 2026-12-02. They change only when the weights, the architecture or the
# preprocessing change: then record them anew, on purpose.
GOLDEN = {
    # stage 4 (2026-12-04); since 2026-12-07 its card reduces the 128-pixel crop to 48 before 96
    "default": [-0.8227, 0.5161, -0.9165, 3.2809, -0.9789, -0.3591, -0.437],
    "fast": [-0.5932, -0.7135, -0.6611, 3.4026, -0.6809, -0.5237, 0.042],  # distilled (2026-12-04)
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_output_of_the_shipped_weights(name):
    from resemotenet.imaging import read_image
    from resemotenet.inference.faces import crop, expand_box
    from resemotenet.inference.sources import demo_image
    from resemotenet.models import load_model

    rgb = read_image(demo_image())
    face = crop(rgb, expand_box((172, 62, 278, 168), 0.2, rgb.shape[1], rgb.shape[0]))
    model = load_model(name).eval()
    with torch.no_grad():
        out = model(model.card.transforms()([face]))[0]
    assert torch.allclose(out, torch.tensor(GOLDEN[name]), atol=2e-3), out.tolist()
    assert model.card.labels[int(out.argmax())] == "happy"


def test_forward_features_and_head_compose():
    torch.manual_seed(0)
    m = ResEmoteNet(width=0.125).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = m(x)
    assert torch.allclose(m.forward_head(m.forward_features(x)), out)
    assert m.forward_head(m.forward_features(x), pre_logits=True).shape == (1, 32)


@pytest.mark.parametrize(
    "size,stride,trimmed",
    [(1, 1, (1, 1)), (2, 2, (2, 2)), (2, 1, None), (3, 2, None), (4, 2, None), (1, 2, (1, 1)), (5, 1, None)],
)
def test_live_tap_convolution_matches_the_padded_one(size, stride, trimmed):
    """Skipping taps that only see padding gives the same outputs and gradients as nn.Conv2d."""
    from torch.nn import functional as F

    from resemotenet.models.layers import Conv2dLiveTaps

    torch.manual_seed(0)
    live = Conv2dLiveTaps(6, 5, 3, stride=stride, padding=1)
    ref = torch.nn.Conv2d(6, 5, 3, stride=stride, padding=1)
    ref.load_state_dict(live.state_dict())
    x = torch.randn(4, 6, size, size, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    seen = []
    real = F.conv2d

    def spy(inp, w, *a, **k):
        seen.append(tuple(w.shape[-2:]))
        return real(inp, w, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, "conv2d", spy)
        out = live(x)
    out_ref = ref(x_ref)
    assert out.shape == out_ref.shape and torch.allclose(out, out_ref, atol=1e-6)
    assert seen == [trimmed or (3, 3)]  # the trimmed kernel ran, or the full one where every tap is live
    g = torch.randn_like(out)
    out.backward(g)
    out_ref.backward(g)
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-6)
    assert torch.allclose(live.weight.grad, ref.weight.grad, atol=1e-6)
    assert torch.allclose(live.bias.grad, ref.bias.grad, atol=1e-6)


def test_live_taps_keep_parameters_and_survive_fusion():
    from resemotenet.inference.backends import TorchBackend
    from resemotenet.models.layers import Conv2dLiveTaps

    model = create_model("resemotenet_t", in_chans=1).eval()
    assert sum(isinstance(m, Conv2dLiveTaps) for m in model.modules()) == 6
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        expected = model(x)
    backend = TorchBackend(model)
    fused = backend.model
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())  # fused ...
    assert sum(type(m) is Conv2dLiveTaps for m in fused.modules()) == 6  # ... and still skipping taps
    assert sum(type(m) is Conv2dLiveTaps for m in model.modules()) == 6  # the caller's model untouched
    assert torch.allclose(backend(x), expected, atol=1e-4)
