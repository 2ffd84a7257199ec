"""Metrics against hand-computed values, and the preprocessing/augmentation contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resemotenet.config import AugmentConfig, PreprocessSpec
from resemotenet.data.transforms import augment_batch, preprocess_batch, respec, ten_crop
from resemotenet.engine.evaluator import restrict
from resemotenet.metrics import classification_metrics, expected_calibration_error


def test_metrics_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    probs = np.eye(3)[pred] * 0.7 + 0.1
    m = classification_metrics(probs, y, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["a"]["recall"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    f1 = [0.5, 0.8, 2 / 3]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert m["nll"] == pytest.approx(np.mean([-np.log(0.8)] * 4 + [-np.log(0.1)] * 2))
    # all predictions at confidence 0.8, accuracy 4/6 -> ECE = |0.667 - 0.8|
    assert m["ece"] == pytest.approx(abs(4 / 6 - 0.8))


def test_ece_zero_when_calibrated():
    probs = np.array([[0.5, 0.5]] * 4)
    assert expected_calibration_error(probs, np.array([0, 1, 0, 1])) == pytest.approx(0.0)


def test_preprocess_gray_to_three_channels_and_resize():
    img = np.full((2, 48, 48), 255, np.uint8)
    spec = PreprocessSpec()  # 64x64x3 ImageNet statistics: the paper's input
    x = preprocess_batch(img, spec)
    assert x.shape == (2, 3, 64, 64)
    assert torch.allclose(x[0, :, 0, 0], (1 - torch.tensor(spec.mean)) / torch.tensor(spec.std), atol=1e-5)


def test_augment_is_seeded_and_shapes_follow_spec():
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    aug = AugmentConfig(shift=0.1, rotate=10, erasing=0.5, brightness=0.2, contrast=0.2, scale=(0.9, 1.1))
    x = torch.randint(0, 255, (8, 1, 48, 48), dtype=torch.uint8)
    a = augment_batch(x, spec, aug, torch.Generator().manual_seed(1))
    b = augment_batch(x, spec, aug, torch.Generator().manual_seed(1))
    c = augment_batch(x, spec, aug, torch.Generator().manual_seed(2))
    assert a.shape == (8, 1, 48, 48) and torch.equal(a, b) and not torch.equal(a, c)


def test_identity_augmentation_equals_preprocessing():
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    x = torch.randint(0, 255, (4, 1, 48, 48), dtype=torch.uint8)
    out = augment_batch(x, spec, AugmentConfig(hflip=0.0), torch.Generator().manual_seed(0))
    assert torch.allclose(out, preprocess_batch(x, spec), atol=1e-5)
    flipped = augment_batch(x, spec, AugmentConfig(hflip=1.0), torch.Generator().manual_seed(0))
    assert torch.allclose(flipped, preprocess_batch(x, spec).flip(-1), atol=1e-5)


def test_ten_crop_and_respec():
    x = torch.randn(3, 1, 48, 48)
    assert ten_crop(x).shape == (10, 3, 1, 48, 48)
    assert torch.equal(ten_crop(x)[5], ten_crop(x)[0].flip(-1))
    src = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    raw = torch.randint(0, 255, (2, 1, 48, 48), dtype=torch.uint8)
    via = respec(preprocess_batch(raw, src), src, PreprocessSpec())
    assert torch.allclose(via, preprocess_batch(raw, PreprocessSpec()), atol=1e-4)


def test_restrict_to_shared_labels():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]])
    y = np.array([0, 1, 0])  # data labels: (b, c); model labels (a, b, c)
    p, t, shared = restrict(probs, y, ("a", "b", "c"), ("b", "c"))
    assert shared == ("b", "c") and t.tolist() == [0, 1, 0]
    assert np.allclose(p.sum(1), 1) and np.allclose(p[0], [0.6, 0.4])
