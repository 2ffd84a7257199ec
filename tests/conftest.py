"""Shared fixtures: an isolated cache, the real data folder (or a skip), tiny checkpoints and a
FER2013 csv in the official format. Everything here is made on the fly; nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FER2013_CSV = SHARED / "fer2013" / "fer2013.csv.gz"


# the smallest trainable recipe: a width-0.125 network on 48x48 grayscale faces (tests that train)
TINY_RECIPE = [
    "model.kwargs={width: 0.125}",
    "preprocess.size=48",
    "preprocess.channels=1",
    "preprocess.mean=[0.5]",
    "preprocess.std=[0.25]",
    "batch_size=16",
    "progress=false",
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session caches parsed data in its own folder, never in the user's home."""
    monkeypatch.setenv("RESEMOTENET_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def real_fer2013() -> Path:
    if not FER2013_CSV.is_file():
        pytest.skip(f"real FER2013 not available at {FER2013_CSV}")
    return FER2013_CSV


def face_like(rng: np.random.Generator, label: int, side: int = 48) -> np.ndarray:
    """A synthetic grayscale 'face' whose mouth curvature depends on the label, so a model can
    learn the classes of a fixture in a few steps."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    img = 90 + 60 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.08)
    curve = (label - 3) / 3.0
    mouth = np.abs(yy - (0.72 + 0.12 * curve * (xx - 0.5) ** 2 * 8)) < 0.04
    img[mouth & (np.abs(xx - 0.5) < 0.2)] = 20 + 25 * label
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_fer2013_csv(path: Path, per_split: dict[str, int], seed: int = 0) -> Path:
    """A csv in the exact official layout: header ``emotion,pixels,Usage``."""
    rng = np.random.default_rng(seed)
    lines = ["emotion,pixels,Usage"]
    for usage, n in per_split.items():
        for i in range(n):
            label = i % 7
            pix = " ".join(map(str, face_like(rng, label).ravel()))
            lines.append(f"{label},{pix},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fer2013_csv(tmp_path) -> Path:
    return write_fer2013_csv(tmp_path / "fer2013.csv", {"Training": 140, "PublicTest": 35, "PrivateTest": 35})


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    """A randomly initialised compact model saved with full metadata (48x48 grayscale)."""
    from resemotenet.config import PreprocessSpec
    from resemotenet.labels import EMOTIONS7
    from resemotenet.models import create_model, save_model
    from resemotenet.models.checkpoint import make_meta

    torch.manual_seed(0)
    model = create_model("resemotenet_s", num_classes=7, in_chans=1).eval()
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    meta = make_meta("resemotenet_s", {"num_classes": 7, "in_chans": 1}, spec, EMOTIONS7)
    return save_model(tmp_path / "tiny.pt", model, meta)


@pytest.fixture(autouse=True)
def _named_fer2013(monkeypatch):
    """The package finds real FER2013 faces only where the user names them; the tests name the
    development data when this machine has it."""
    if FER2013_CSV.is_file():
        monkeypatch.setenv("RESEMOTENET_FER2013", str(FER2013_CSV))
