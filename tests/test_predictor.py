"""The Predictor's options that are not about locating faces (test-time augmentation)."""

from __future__ import annotations

import numpy as np
import pytest


def test_flip_tta_averages_a_face_with_its_mirror_image(tiny_checkpoint):
    """``tta='flip'``: each face's probabilities are the mean of the crop's and its mirror's, so a
    crop and its mirror get the same answer; an unknown name is a one-line error."""
    from resemotenet import Predictor
    from resemotenet.utils.errors import ConfigError

    rng = np.random.default_rng(0)
    crop = rng.integers(0, 255, (60, 50, 3), dtype=np.uint8)
    plain, flip = Predictor(str(tiny_checkpoint)), Predictor(str(tiny_checkpoint), tta="flip")
    a, b = plain.score([crop]), plain.score([crop[:, ::-1].copy()])
    assert not np.allclose(a, b)  # the tiny random model is not mirror-symmetric
    both = flip.score([crop, crop[:, ::-1].copy()])
    np.testing.assert_allclose(both[0], (a[0] + b[0]) / 2, atol=1e-6)
    np.testing.assert_allclose(both[0], both[1], atol=1e-6)
    with pytest.raises(ConfigError, match="unknown test-time augmentation"):
        Predictor(str(tiny_checkpoint), tta="tencrop")
