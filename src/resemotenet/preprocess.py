"""The ONLY place a face crop becomes a model input: resize, channels, normalisation.

Every consumer (training's evaluation path, ``eval``, ``predict``, export parity, quantization
calibration, ``serve``) calls ``FaceTransform`` through ``ModelCard.transforms()``, so the
recipe cannot drift between them. Crops travel as uint8: (H, W) grayscale or (H, W, 3) RGB;
each is resized on uint8 with OpenCV (area when shrinking, bilinear when enlarging), exactly as
the training data was materialised, then normalised in float.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from .config import PreprocessSpec

_LUMA = torch.tensor(PreprocessSpec.LUMA).view(1, 3, 1, 1)


def resize_face(img: np.ndarray, size: int, reduce_to: int | None = None) -> np.ndarray:
    """Resize one uint8 face crop (H, W) or (H, W, 3) to ``size`` x ``size`` (area when shrinking).

    ``reduce_to`` (``PreprocessSpec.reduce_to``): a crop larger than this is first shrunk to it, so
    a model trained on small faces enlarged to ``size`` sees the detail it was trained on."""
    import cv2

    if reduce_to is not None and min(img.shape[:2]) > reduce_to:
        img = cv2.resize(img, (reduce_to, reduce_to), interpolation=cv2.INTER_AREA)
    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if min(img.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def to_nchw(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, 3) -> uint8 tensor (N, C, H, W) (no copy when possible)."""
    t = torch.as_tensor(images)
    if t.dim() == 3:
        return t.unsqueeze(1)
    if t.dim() == 4 and t.shape[-1] in (1, 3):
        return t.permute(0, 3, 1, 2)
    raise ValueError(f"expected images shaped (N,H,W) or (N,H,W,3), got {tuple(t.shape)}")


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Float (N, C, H, W): grayscale copied to 3 channels, or RGB reduced to luminance."""
    if x.shape[1] == channels:
        return x
    if channels == 3:
        return x.expand(-1, 3, -1, -1)
    return (x * _LUMA.to(x.dtype)).sum(1, keepdim=True)


def normalize(x: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean, dtype=x.dtype).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - mean) / std


def preprocess_batch(images: np.ndarray | torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """uint8 batch (any layout accepted by ``to_nchw``) -> normalised float (N, C, size, size)."""
    x = (
        images
        if isinstance(images, torch.Tensor) and images.dim() == 4 and images.shape[1] in (1, 3)
        else to_nchw(images)
    )
    x = match_channels(x.float().div_(255.0), spec.channels)
    if x.shape[-2:] != (spec.size, spec.size):
        x = F.interpolate(
            x, size=(spec.size, spec.size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > spec.size
        )
    return normalize(x, spec).contiguous()


def as_rgb_crop(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W) or (H, W, 3) (alpha dropped)."""
    if img.dtype != np.uint8:
        raise ValueError(f"face crops must be uint8, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        return img[..., 0]
    if img.ndim == 3 and img.shape[2] == 4:
        return img[..., :3]
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3):
        return img
    raise ValueError(f"a face crop must be (H, W) or (H, W, 3), got shape {img.shape}")


class FaceTransform:
    """uint8 face crops of any size -> the normalised float batch (N, C, size, size) a model takes.

    Accepts a sequence of crops, or an (N, H, W) / (N, H, W, 3) uint8 array of same-size crops.
    Crops go through ``resize_face`` (with ``spec.reduce_to``); an array already at the input size
    is taken as it is (``data.materialize`` prepares datasets that way)."""

    def __init__(self, spec: PreprocessSpec):
        self.spec = spec

    def __call__(self, crops: Sequence[np.ndarray] | np.ndarray | torch.Tensor) -> torch.Tensor:
        size = self.spec.size
        if isinstance(crops, torch.Tensor):  # an already batched uint8 tensor (N, C, H, W) or (N, H, W)
            return preprocess_batch(crops, self.spec)
        if isinstance(crops, np.ndarray) and crops.ndim in (3, 4) and crops.shape[1:3] == (size, size):
            return preprocess_batch(crops, self.spec)
        if len(crops) == 0:
            return torch.zeros((0, self.spec.channels, size, size))
        resized = [resize_face(as_rgb_crop(np.asarray(c)), size, self.spec.reduce_to) for c in crops]
        if any(r.ndim == 3 for r in resized):  # one batch may mix grayscale and colour crops
            resized = [np.repeat(r[..., None], 3, axis=-1) if r.ndim == 2 else r for r in resized]
        return preprocess_batch(np.stack(resized), self.spec)

    def __repr__(self) -> str:
        s = self.spec
        return (
            f"FaceTransform(resize {s.size}x{s.size} uint8, {s.channels} channel(s), "
            f"mean {list(s.mean)}, std {list(s.std)})"
        )
