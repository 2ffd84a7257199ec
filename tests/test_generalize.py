"""The generalisation recipe's ingredients: FER+ votes blended into FER2013's training targets,
and camera-like degradations (gamma, blur, noise) in the batched augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_fer2013_csv
from test_readers import FERPLUS_ROWS, write_ferplus

from resemotenet.config import AugmentConfig, PreprocessSpec, load_config
from resemotenet.data.readers import fer2013
from resemotenet.data.transforms import augment_batch, gaussian_blur
from resemotenet.utils.errors import ConfigError, DataError


@pytest.fixture
def paired(tmp_path):
    """FER2013 (labels 0..6 cycling) and FER+ votes for the same 18 rows, both in their official layout."""
    csv = write_fer2013_csv(tmp_path / "fer2013.csv", {"Training": 10, "PublicTest": 4, "PrivateTest": 4})
    votes = write_ferplus(tmp_path / "fer2013new.csv")
    return csv, votes


def test_blended_targets_mix_fer2013_labels_with_ferplus_votes(paired):
    csv, votes = paired
    plain = fer2013.read(csv)
    splits = fer2013.read(csv, ferplus=votes, ferplus_weight=0.5)
    train = splits["train"]
    assert splits["val"].soft is None and splits["test"].soft is None  # selection and reports: FER2013 labels
    np.testing.assert_array_equal(train.labels, plain["train"].labels)
    assert train.soft.shape == (10, 7) and np.allclose(train.soft.sum(1), 1.0)
    # row 0: FER2013 says angry (label 0), FER+ says neutral 10/10 -> half angry, half neutral
    np.testing.assert_allclose(train.soft[0], [0.5, 0, 0, 0, 0, 0, 0.5], atol=1e-6)
    # row 1: FER2013 disgust (1); FER+ happiness 6, surprise 4 -> 0.5 disgust, 0.3 happy, 0.2 surprise
    np.testing.assert_allclose(train.soft[1], [0, 0.5, 0, 0.3, 0, 0.2, 0], atol=1e-6)
    # row 3: FER2013 happy (3); single FER+ votes are annotator noise and dropped, anger 4 remains
    np.testing.assert_allclose(train.soft[3], [0.5, 0, 0, 0.5, 0, 0, 0], atol=1e-6)
    # rows FER+ calls unknown (5) or not a face (6) keep their one-hot FER2013 target
    for row in (5, 6):
        np.testing.assert_array_equal(train.soft[row], np.eye(7, dtype=np.float32)[train.labels[row]])
    assert (train.soft[np.arange(10), train.labels] >= 0.5).all()  # FER2013's label keeps at least half


def test_blend_weight_bounds_and_misaligned_files(paired, tmp_path):
    csv, votes = paired
    only_votes = fer2013.read(csv, ferplus=votes, ferplus_weight=1.0)["train"].soft
    np.testing.assert_allclose(only_votes[0], [0, 0, 0, 0, 0, 0, 1.0])
    with pytest.raises(DataError, match=r"ferplus_weight must lie in \[0, 1\]"):
        fer2013.read(csv, ferplus=votes, ferplus_weight=1.5)
    short = write_ferplus(tmp_path / "short" / "fer2013new.csv", FERPLUS_ROWS[:-1])
    with pytest.raises(DataError, match="rows do not line up"):
        fer2013.read(csv, ferplus=short)
    with pytest.raises(DataError, match="file not found"):
        fer2013.read(csv, ferplus=tmp_path / "missing.csv")


def test_recipe_config_loads_with_every_ingredient():
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "fer2013_s96_general.yaml")
    assert cfg.data.options["ferplus_weight"] == 0.5 and cfg.data.options["ferplus"].endswith("fer2013new.csv")
    assert (
        cfg.augment.blur > 0
        and cfg.augment.noise > 0
        and cfg.augment.gamma > 0
        and cfg.init_from == "runs/fer2013_s96b/best.pt"
    )


def test_gaussian_blur_matches_opencv_and_leaves_sigma_zero_alone():
    import cv2

    x = torch.rand(3, 1, 40, 40)
    y = gaussian_blur(x, torch.tensor([0.0, 1.0, 2.5]))
    assert torch.equal(y[0], x[0])
    for i, s in ((1, 1.0), (2, 2.5)):
        ref = cv2.GaussianBlur(x[i, 0].numpy(), (0, 0), s, borderType=cv2.BORDER_REFLECT_101)
        assert np.abs(ref - y[i, 0].numpy()).max() < 1e-3  # OpenCV's kernel reaches 4 sigma, ours 3
    assert torch.equal(gaussian_blur(x, torch.zeros(3)), x)


def _batch(aug: AugmentConfig, seed: int = 0) -> torch.Tensor:
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    img = torch.full((256, 1, 48, 48), 128, dtype=torch.uint8)
    img[:, :, :, 24:] = 200  # an edge, so blur has something to soften
    return augment_batch(img, spec, aug, torch.Generator().manual_seed(seed)) * 0.25 + 0.5  # back to [0, 1]


def test_degradations_hit_the_asked_share_of_the_batch():
    base = AugmentConfig(hflip=0.0)
    clean = _batch(base)
    noisy = _batch(AugmentConfig(hflip=0.0, noise=0.5, noise_sigma=24.0))
    changed = (noisy - clean).abs().flatten(1).amax(1) > 1e-6
    assert 0.35 < changed.float().mean() < 0.65  # about half the faces got noise
    blurred = _batch(AugmentConfig(hflip=0.0, blur=1.0, blur_sigma=2.0))
    edge = lambda b: (b[:, 0, :, 24] - b[:, 0, :, 23]).abs().mean(1)  # noqa: E731
    assert (edge(blurred) <= edge(clean) + 1e-6).all() and edge(blurred).mean() < 0.9 * edge(clean).mean()
    lit = _batch(AugmentConfig(hflip=0.0, gamma=0.6))
    means = lit.flatten(1).mean(1)
    assert means.std() > 0.02 and (lit >= 0).all() and (lit <= 1 + 1e-6).all()  # light varies, stays in range


# ---- resolution matching: a sharp camera crop is reduced to the training faces' resolution --------
def _checker(side: int) -> np.ndarray:
    """A face-sized crop full of detail finer than 48 pixels can hold (a 2-pixel checkerboard)."""
    yy, xx = np.mgrid[:side, :side]
    return (((yy // 2 + xx // 2) % 2) * 200 + 20).astype(np.uint8)


def test_source_size_is_validated_and_travels_only_when_set():
    plain = PreprocessSpec(size=96, channels=1, mean=(0.5,), std=(0.25,))
    assert plain.reduce_to is None and "source_size" not in plain.to_dict()
    spec = PreprocessSpec(size=96, channels=1, mean=(0.5,), std=(0.25,), source_size=48)
    assert spec.reduce_to == 48
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    assert PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,), source_size=48).reduce_to is None
    for bad in (8, 128):
        with pytest.raises(ConfigError, match="source_size"):
            PreprocessSpec(size=96, channels=1, mean=(0.5,), std=(0.25,), source_size=bad)


def test_large_crops_are_reduced_to_the_source_size_before_enlarging():
    import cv2

    from resemotenet.preprocess import FaceTransform, resize_face

    crop = _checker(200)
    two_step = cv2.resize(cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA), (96, 96))
    assert np.array_equal(resize_face(crop, 96, 48), two_step)
    direct = resize_face(crop, 96)
    assert np.abs(direct.astype(int) - two_step.astype(int)).mean() > 5  # the reduction removes detail
    small = _checker(40)  # no larger than the source size: enlarged directly, as before
    assert np.array_equal(resize_face(small, 96, 48), resize_face(small, 96))
    spec = PreprocessSpec(size=96, channels=1, mean=(0.5,), std=(0.25,), source_size=48)
    x = FaceTransform(spec)([crop])
    ref = (torch.from_numpy(two_step).float() / 255 - 0.5) / 0.25
    assert torch.allclose(x[0, 0], ref, atol=1e-5)
    # an array already at the input size is taken as it is (datasets are prepared by materialize)
    ready = np.stack([direct])
    assert torch.allclose(FaceTransform(spec)(ready)[0, 0], (torch.from_numpy(direct).float() / 255 - 0.5) / 0.25)


def test_materialize_reduces_large_images_and_leaves_small_ones(tmp_path):
    import cv2

    from resemotenet.data.dataset import Split, materialize

    big, small = _checker(200), _checker(48)
    paths = []
    for i, img in enumerate((big, small)):
        paths.append(str(tmp_path / f"{i}.png"))
        cv2.imwrite(paths[-1], img)
    split = Split("test", np.array([0, 1]), ("a", "b"), paths=paths, source="folder:x", cacheable=False)
    out = materialize(split, 96, gray=True, reduce_to=48)
    assert np.array_equal(out[0], cv2.resize(cv2.resize(big, (48, 48), interpolation=cv2.INTER_AREA), (96, 96)))
    assert np.array_equal(out[1], cv2.resize(small, (96, 96)))
    assert not np.array_equal(materialize(split, 96, gray=True)[0], out[0])
