"""The model card: a typed, frozen record in every weights file, with one ``transforms()``; files
written before the card existed (their metadata is kept here verbatim) still load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from resemotenet.card import Framing, Metric, ModelCard
from resemotenet.utils.errors import CheckpointError

# the metadata of the shipped 'fast' weights as written before the model card (release 0.1.0, 2026-11-25)
OLD_META = {
    "format": "resemotenet/1",
    "model": "resemotenet_s",
    "model_kwargs": {"num_classes": 7, "in_chans": 1, "width": 0.125},
    "preprocess": {"size": 48, "channels": 1, "mean": [0.5], "std": [0.25]},
    "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
    "temperature": 0.8767942823837271,
    "package_version": "0.1.0",
    "dataset": "fer2013",
}


def _old_files(tmp_path):
    from resemotenet.models import create_model

    torch.manual_seed(0)
    model = create_model("resemotenet_s", num_classes=7, in_chans=1, width=0.125).eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    pt = tmp_path / "old.pt"
    torch.save({"resemotenet": json.dumps(OLD_META), "model": state}, pt)
    st = tmp_path / "old.safetensors"
    from safetensors.torch import save_file

    save_file(state, str(st), metadata={"resemotenet": json.dumps(OLD_META)})
    return model, pt, st


def test_old_checkpoint_and_safetensors_load(tmp_path):
    from resemotenet.models import load_model

    model, pt, st = _old_files(tmp_path)
    x = torch.rand(2, 1, 48, 48)
    for path in (pt, st):
        loaded = load_model(path)
        card = loaded.card
        assert card.arch == "resemotenet_s" and card.training_data == "fer2013"
        assert card.framing == Framing() and card.metrics == () and card.threshold is None
        assert card.temperature == pytest.approx(0.8768, abs=1e-4)
        with torch.no_grad():
            assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_old_onnx_file_loads(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx", exc_type=ImportError)
    from resemotenet.inference.backends import OnnxBackend

    model, _, _ = _old_files(tmp_path)
    path = tmp_path / "old.onnx"
    torch.onnx.export(
        model,
        (torch.rand(1, 1, 48, 48),),
        str(path),
        dynamo=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}},
    )
    proto = onnx.load(str(path))
    for k, v in {
        "resemotenet": json.dumps(OLD_META),
        "labels": json.dumps(OLD_META["labels"]),
        "preprocess": json.dumps(OLD_META["preprocess"]),
    }.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(path))
    backend = OnnxBackend(path)
    assert backend.card.labels == tuple(OLD_META["labels"]) and backend.card.preprocess.size == 48
    crops = [np.full((60, 60), 128, np.uint8), np.zeros((30, 40, 3), np.uint8)]
    probs = backend.predict(crops)
    assert probs.shape == (2, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    with torch.no_grad():
        ref = torch.softmax(model(backend.transforms()(crops)) / backend.card.temperature, -1).numpy()
    assert np.allclose(probs, ref, atol=1e-5)


def test_card_round_trips_and_is_frozen():
    from dataclasses import FrozenInstanceError

    card = ModelCard.from_meta(OLD_META).with_(
        threshold=0.8,
        metrics=(Metric("accuracy", 0.7, "val", "fer2013", "2026-12-02", "resemotenet eval"),),
        framing=Framing(margin=0.1, detector_margins={"haar": 0.0}),
    )
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert again.framing.margin_for("haar") == 0.0 and again.framing.margin_for("yunet") == 0.1
    with pytest.raises(FrozenInstanceError):
        card.temperature = 2.0  # type: ignore[misc]
    assert "accuracy 0.7000 on val" in card.describe()


def test_transforms_is_the_one_preprocessing():
    """Crops of any size and channel count become the model's batch, as training's data was made."""
    from resemotenet.data.dataset import Split, materialize
    from resemotenet.data.transforms import preprocess_batch

    card = ModelCard.from_meta(OLD_META)
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 255, (3, 100, 100), dtype=np.uint8)
    x = card.transforms()(list(faces))
    assert x.shape == (3, 1, 48, 48)
    split = Split("test", np.zeros(3), tuple(OLD_META["labels"]), images=faces)
    assert torch.allclose(x, preprocess_batch(materialize(split, 48), card.preprocess))
    rgba = np.dstack([np.stack([faces[0]] * 3, -1), np.full((100, 100), 255, np.uint8)])
    assert torch.allclose(card.transforms()([rgba])[0], x[0], atol=1e-6)


def test_missing_card_fields_are_one_clear_error():
    with pytest.raises(CheckpointError, match="lacks 'labels', 'preprocess'"):
        ModelCard.from_meta({"model": "resemotenet_s"}, "x.pt")
    with pytest.raises(CheckpointError, match="malformed model card"):
        ModelCard.from_meta({**OLD_META, "temperature": "warm"}, "x.pt")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ModelCard.from_json("{", "x.pt")


def test_info_prints_the_card(capsys):
    from resemotenet.cli import main

    assert main(["info", "default"]) == 0
    out = capsys.readouterr().out
    assert "architecture   resemotenet_s" in out and "haar: 0.0" in out and "PrivateTest" in out
    assert main(["info", "fast", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["framing"]["detector_margins"] == {
        "haar": 0.0,
        "centerface": 0.0,
        "mediapipe": 0.0,
    }


def test_predictor_takes_its_framing_from_the_card(tmp_path):
    """The card's margin per detector (and alignment) reach the crop unless the caller overrides them."""
    from resemotenet.inference.predictor import Predictor
    from resemotenet.models import create_model, save_model

    framing = Framing(margin=0.3, detector_margins={"haar": 0.0}, align=True)
    meta = ModelCard.from_meta(OLD_META).with_(framing=framing).to_meta()
    path = save_model(tmp_path / "m.pt", create_model("resemotenet_s", num_classes=7, in_chans=1, width=0.125), meta)
    assert Predictor(path, detector="haar").margin == 0.0
    assert Predictor(path, detector="centerface").margin == 0.3
    p = Predictor(path, detector="haar", margin=0.15, align=False)
    assert p.margin == 0.15 and p.align is False
    assert Predictor(path, detector="haar").align is True


CARD_KEYS = {
    "format", "model", "model_kwargs", "preprocess", "labels", "temperature", "framing", "threshold",
    "training_data", "recipe", "parameters", "metrics", "package_version", "explain_layer", "epoch", "averaged_from",
}  # fmt: skip


def _meta_key_reads(path) -> list[str]:
    """``meta["labels"]``, ``meta.get("labels")``, ``pretrained_cfg["labels"]``, ... in one file."""
    import ast

    def metaish(node) -> bool:
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
        return "meta" in name.lower() or name == "pretrained_cfg"

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        key = None
        if isinstance(node, ast.Subscript) and metaish(node.value) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and metaish(node.func.value)
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            key = node.args[0].value
        if key in CARD_KEYS:
            found.append(f"{path.name}:{node.lineno} reads {key!r}")
    return found


def test_metadata_keys_are_read_in_card_py_only():
    """The card is the currency: every other module reads typed fields, never metadata keys."""
    from pathlib import Path

    import resemotenet

    pkg = Path(resemotenet.__file__).parent
    reads = [r for p in sorted(pkg.rglob("*.py")) if p.name != "card.py" for r in _meta_key_reads(p)]
    assert not reads, reads


def test_the_key_check_sees_a_planted_read(tmp_path):
    planted = tmp_path / "x.py"
    planted.write_text("def f(meta, model):\n    return meta['labels'], model.pretrained_cfg.get('preprocess')\n")
    assert len(_meta_key_reads(planted)) == 2


def test_opening_the_shipped_model_parses_its_card_once(monkeypatch):
    from resemotenet.card import ModelCard
    from resemotenet.inference.predictor import Predictor

    calls = []
    original = ModelCard.from_meta.__func__

    def counting(cls, meta, where="metadata"):
        calls.append(where)
        return original(cls, meta, where)

    monkeypatch.setattr(ModelCard, "from_meta", classmethod(counting))
    predictor = Predictor(detector=lambda rgb: [])
    assert len(calls) == 1, calls
    assert predictor.card.labels and predictor.min_confidence == (predictor.card.threshold or 0.0)
