"""Grad-CAM: maps follow the evidence a model was trained on, the shipped model's map changes when
the mouth that drives its 'happy' is covered, error paths, and ``predict --explain``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resemotenet.cli import main
from resemotenet.config import PreprocessSpec
from resemotenet.imaging import read_image
from resemotenet.inference.explain import explain, explain_faces, overlay
from resemotenet.inference.predictor import Predictor
from resemotenet.inference.sources import demo_image
from resemotenet.utils.errors import ConfigError, DataError


def square_image(rng: np.random.Generator, right: bool) -> np.ndarray:
    """48x48 noise with a bright 12 px square in the left or the right half."""
    img = rng.normal(100, 15, (48, 48))
    x = int(rng.integers(26, 34)) if right else int(rng.integers(2, 10))
    y = int(rng.integers(4, 32))
    img[y : y + 12, x : x + 12] = 230
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def side_model():
    """A tiny ResEmoteNet trained for a few steps to say on which side the square is."""
    from resemotenet.data.transforms import preprocess_batch
    from resemotenet.models import create_model

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    model = create_model("resemotenet_t", num_classes=2, in_chans=1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(60):
        ys = rng.integers(0, 2, 32)
        x = preprocess_batch(np.stack([square_image(rng, bool(y)) for y in ys])[..., None], spec)
        loss = torch.nn.functional.cross_entropy(model(x), torch.as_tensor(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.pretrained_cfg = {"model": "resemotenet_t", "preprocess": spec.to_dict(), "labels": ["left", "right"]}
    test = [(square_image(rng, bool(y)), y) for y in rng.integers(0, 2, 40)]
    with torch.no_grad():
        pred = model(preprocess_batch(np.stack([t for t, _ in test])[..., None], spec)).argmax(1).numpy()
    assert (pred == np.array([y for _, y in test])).mean() >= 0.9  # it learned the task, so the maps mean something
    return model


def centre_x(heat: np.ndarray) -> float:
    return float((heat.sum(0) * np.arange(heat.shape[1])).sum() / heat.sum() / heat.shape[1])


def test_map_follows_the_square_when_it_is_covered_and_moved(side_model):
    rng = np.random.default_rng(7)
    left_x, right_x = [], []
    for _ in range(6):
        img = square_image(rng, right=False)
        heat = explain(side_model, img)
        assert heat.shape == (48, 48) and heat.dtype == np.float32 and heat.min() >= 0 and heat.max() == 1
        left_x.append(centre_x(heat))
        moved = img.copy()
        ys, xs = np.nonzero(img == 230)
        moved[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 100  # cover the square ...
        moved[ys.min() : ys.max() + 1, xs.min() + 24 : xs.max() + 25] = 230  # ... and show it on the other side
        right_x.append(centre_x(explain(side_model, moved)))
    assert np.mean(left_x) < 0.45 and np.mean(right_x) > 0.55


def test_map_for_the_other_class_differs(side_model):
    img = square_image(np.random.default_rng(3), right=True)
    a, b = explain(side_model, img, target="right"), explain(side_model, img, target=0)
    assert not np.allclose(a, b, atol=0.05)


def test_shipped_model_map_changes_most_when_the_mouth_is_covered():
    predictor = Predictor(margin=0.2, align=False)  # a fixed crop geometry: rows 0.6-0.85 hold the mouth
    ((_, crop, heat),) = explain_faces(predictor, read_image(demo_image()))
    assert heat.shape == crop.shape[:2]
    h, w = crop.shape[:2]
    happy = predictor.labels.index("happy")

    def covered(y0: float, y1: float) -> tuple[float, float]:
        c = crop.copy()
        c[int(y0 * h) : int(y1 * h), int(0.25 * w) : int(0.75 * w)] = 128
        corr = float(np.corrcoef(heat.ravel(), explain(predictor, c, target="happy").ravel())[0, 1])
        return float(predictor.classify([c])[0, happy]), corr

    p_mouth, corr_mouth = covered(0.6, 0.85)
    p_hair, corr_hair = covered(0.0, 0.3)
    # the mouth drives 'happy' (0.89 -> 0.37 covered; 0.2 before the card reduced crops to 48 pixels)
    assert predictor.classify([crop])[0, happy] > 0.8 and p_mouth < 0.5 and p_hair > 0.8
    assert corr_mouth < corr_hair
    hot, cold = heat >= np.quantile(heat, 0.75), heat <= np.quantile(heat, 0.25)
    p_hot, p_cold = (
        float(predictor.classify([np.where(m[..., None], 128, crop).astype(np.uint8)])[0, happy]) for m in (hot, cold)
    )
    assert p_hot < 0.5 < p_cold  # greying the hottest quarter removes 'happy', greying the coldest does not


def test_a_model_card_names_its_explain_block(side_model):
    img = square_image(np.random.default_rng(5), right=True)
    side_model.pretrained_cfg = {**side_model.pretrained_cfg, "explain_layer": "res_block1"}
    try:
        assert np.allclose(explain(side_model, img), explain(side_model, img, layer="res_block1"))
        assert not np.allclose(explain(side_model, img), explain(side_model, img, layer="se"), atol=0.05)
    finally:
        side_model.pretrained_cfg.pop("explain_layer")


def test_overlay_is_an_rgb_image_at_least_192_px():
    crop = np.full((60, 50), 120, np.uint8)
    img = overlay(crop, np.linspace(0, 1, 3000, dtype=np.float32).reshape(60, 50))
    assert img.dtype == np.uint8 and img.shape == (230, 192, 3)


def test_error_paths(side_model, tmp_path):
    img = square_image(np.random.default_rng(0), right=False)
    with pytest.raises(DataError, match="uint8"):
        explain(side_model, img.astype(np.float32))
    with pytest.raises(ConfigError, match="unknown label 'up'"):
        explain(side_model, img, target="up")
    with pytest.raises(ConfigError, match="out of range"):
        explain(side_model, img, target=5)
    with pytest.raises(ConfigError, match="no block 'fc9'"):
        explain(side_model, img, layer="fc9")
    from resemotenet.models import create_model

    with pytest.raises(ConfigError, match="no model card"):
        explain(create_model("resemotenet_t", num_classes=2, in_chans=1), img)

    class OnnxPredictor:
        model_source = "emotion.onnx"

    with pytest.raises(ConfigError, match="ONNX"):
        explain(OnnxPredictor(), img)


def test_cli_explain_writes_one_png_per_face(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "maps"
    assert (
        main(
            [
                "predict",
                str(demo_image()),
                "--model",
                str(tiny_checkpoint),
                "-o",
                str(tmp_path / "r.jsonl"),
                "--explain",
                str(out),
            ]
        )
        == 0
    )
    assert [p.name for p in out.iterdir()] == ["astronaut_face1.png"]
    assert read_image(out / "astronaut_face1.png").shape[2] == 3
    assert "1 heat map(s) in" in capsys.readouterr().out
