"""Self-describing checkpoints, safe loading, and the official release's layout."""

from __future__ import annotations

import json

import pytest
import torch

from resemotenet.config import PreprocessSpec
from resemotenet.labels import EMOTIONS7, OFFICIAL_RESEMOTENET_ORDER
from resemotenet.models import create_model, load_model, save_model
from resemotenet.models.checkpoint import load_checkpoint, make_meta
from resemotenet.utils.errors import CheckpointError


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_roundtrip_keeps_weights_and_metadata(tmp_path, suffix):
    torch.manual_seed(0)
    model = create_model("resemotenet_s", in_chans=1).eval()
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    meta = make_meta("resemotenet_s", {"num_classes": 7, "in_chans": 1}, spec, EMOTIONS7, temperature=1.5)
    path = save_model(tmp_path / f"m{suffix}", model, meta)
    loaded = load_model(path)
    assert loaded.pretrained_cfg["labels"] == list(EMOTIONS7)
    assert PreprocessSpec.from_dict(loaded.pretrained_cfg["preprocess"]) == spec
    assert loaded.pretrained_cfg["temperature"] == 1.5
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x))


def _official_state(tmp_path, wrap: bool):
    torch.manual_seed(0)
    model = create_model("resemotenet").eval()
    state = model.state_dict()
    path = tmp_path / "official.pth"
    torch.save({"model_state_dict": state, "epoch": 3} if wrap else state, path)
    return model, path


@pytest.mark.parametrize("wrap", [True, False])
def test_official_checkpoint_loads_strict_and_remaps_classes(tmp_path, wrap):
    official, path = _official_state(tmp_path, wrap)
    ours = load_model(path)
    assert ours.pretrained_cfg["source"] == "official"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        theirs, mine = official(x)[0], ours(x)[0]
    for i, name in enumerate(EMOTIONS7):
        assert torch.isclose(mine[i], theirs[OFFICIAL_RESEMOTENET_ORDER.index(name)])


def test_checkpoint_of_other_architecture_is_refused(tmp_path):
    model = create_model("resemotenet_s")
    meta = make_meta("resemotenet", {"num_classes": 7}, PreprocessSpec(), EMOTIONS7)  # lies about its model
    path = save_model(tmp_path / "wrong.pt", model, meta)
    with pytest.raises(CheckpointError, match="do not fit model 'resemotenet'"):
        load_model(path)


def test_foreign_and_corrupt_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a ResEmoteNet checkpoint"):
        load_model(tmp_path / "foreign.pt")
    (tmp_path / "trunc.pt").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        load_model(tmp_path / "trunc.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_pickled_code_is_never_executed(tmp_path):
    """weights_only loading refuses arbitrary objects instead of running them."""

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    torch.save({"resemotenet": json.dumps({}), "model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pt")


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    model = create_model("resemotenet_s")
    meta = make_meta("resemotenet_s", {"num_classes": 7}, PreprocessSpec(), EMOTIONS7)
    dst = tmp_path / "ckpt.pt"

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    from resemotenet.utils.errors import ResEmoteNetError

    with pytest.raises(ResEmoteNetError, match="No space left"):
        save_model(dst, model, meta)
    assert list(tmp_path.iterdir()) == []


def test_cli_exports_a_half_precision_safetensors_for_shipping(tiny_checkpoint, tmp_path, capsys):
    from resemotenet.cli import main

    out = tmp_path / "ship.safetensors"
    assert main(["export", str(tiny_checkpoint), "--format", "safetensors", "--half", "-o", str(out)]) == 0
    assert "fp16 safetensors" in capsys.readouterr().out
    state, meta, _ = load_checkpoint(out)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert meta["preprocess"]["size"] == 48
    full, small = load_model(tiny_checkpoint), load_model(out)
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(full(x), small(x), atol=1e-2)
    assert main(["export", str(tiny_checkpoint), "--format", "safetensors", "-o", str(out)]) == 2  # exists


def test_shipped_names_resolve_and_a_missing_one_says_so(monkeypatch, tmp_path):
    from resemotenet.models import checkpoint

    monkeypatch.setitem(checkpoint.SHIPPED, "fast", tmp_path / "gone.safetensors")
    with pytest.raises(CheckpointError, match="shipped 'fast' weights are not installed"):
        checkpoint.load_model("fast")
    assert checkpoint.resolve_weights(tmp_path / "mine.pt") == tmp_path / "mine.pt"
    assert checkpoint.resolve_weights(None) == checkpoint.SHIPPED["default"]
