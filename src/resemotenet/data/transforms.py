"""Training-time augmentation and test-time views, on top of the inference preprocessing in
``resemotenet.preprocess`` (re-exported here, so both paths share one definition).

Images travel as uint8: (N, H, W) grayscale or (N, H, W, 3) RGB numpy arrays, or uint8 tensors
(N, C, H, W). Training augments whole batches on tensors (one ``grid_sample`` does resize,
shift, scale and rotation), which is far cheaper on a CPU than per-sample pipelines.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..config import AugmentConfig, PreprocessSpec
from ..preprocess import match_channels, normalize, preprocess_batch, resize_face, to_nchw

__all__ = [
    "augment_batch",
    "gaussian_blur",
    "match_channels",
    "normalize",
    "preprocess_batch",
    "resize_face",
    "respec",
    "ten_crop",
    "to_nchw",
]


def augment_batch(x: torch.Tensor, spec: PreprocessSpec, aug: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """uint8 (N, C, H, W) -> augmented, normalised float (N, channels, size, size).

    Flip, shift, scale and rotation are one affine warp (which also resizes to ``spec.size``);
    then brightness / contrast jitter and random erasing.
    """
    n = x.shape[0]
    x = match_channels(x.float().div_(255.0), spec.channels)
    theta = _affine(n, aug, gen)
    grid = F.affine_grid(theta, [n, x.shape[1], spec.size, spec.size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if aug.brightness > 0 or aug.contrast > 0:
        b = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * aug.brightness
        c = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * aug.contrast
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * c + mean * b).clamp_(0, 1)
    x = _degrade(x, aug, gen)
    x = normalize(x, spec)
    if aug.erasing > 0:
        x = _erase(x, aug.erasing, gen)
    return x.contiguous()


def _affine(n: int, aug: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """(N, 2, 3) sampling matrices in normalised coordinates."""

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    flip = torch.where(torch.rand(n, generator=gen) < aug.hflip, -1.0, 1.0)
    scale = uniform(*aug.scale)
    angle = uniform(-aug.rotate, aug.rotate) * (math.pi / 180)
    tx, ty = uniform(-aug.shift, aug.shift) * 2, uniform(-aug.shift, aug.shift) * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, tx], 1),
            torch.stack([sin * flip, cos, ty], 1),
        ],
        1,
    )
    return theta


def _degrade(x: torch.Tensor, aug: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Camera-like degradations on [0, 1] images: gamma (light), Gaussian blur (focus, motion),
    Gaussian noise (sensor); each applied to a random subset of the batch at a random strength."""
    n = x.shape[0]
    if aug.gamma > 0:
        g = torch.exp((torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * aug.gamma)
        x = x.clamp_min(1e-6).pow(g)
    if aug.blur > 0:
        sigma = torch.rand(n, generator=gen) * aug.blur_sigma * x.shape[-1] / 48.0
        sigma = torch.where(torch.rand(n, generator=gen) < aug.blur, sigma, torch.zeros_like(sigma))
        x = gaussian_blur(x, sigma)
    if aug.noise > 0:
        sd = torch.rand(n, 1, 1, 1, generator=gen) * (aug.noise_sigma / 255.0)
        sd = sd * (torch.rand(n, 1, 1, 1, generator=gen) < aug.noise)
        x = (x + torch.randn(x.shape, generator=gen, dtype=x.dtype) * sd).clamp_(0, 1)
    return x


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image separable Gaussian blur of (N, C, H, W) with sigma (N,) in pixels (0 = unchanged)."""
    n, c, h, w = x.shape
    smax = float(sigma.max()) if n else 0.0
    if smax < 0.1:
        return x
    r = max(1, min(int(math.ceil(3 * smax)), (min(h, w) - 1) // 2))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    s = sigma.to(x.dtype).clamp_min(1e-3).view(-1, 1)
    k = torch.exp(-0.5 * (t.view(1, -1) / s) ** 2)
    k = torch.where(sigma.view(-1, 1) < 0.1, (t.view(1, -1) == 0).to(x.dtype), k)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (N*C, 2r+1)
    y = F.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)
    return y.view(n, c, h, w)


def _erase(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Random erasing (Zhong et al. 2020): one rectangle of 2-25 % of the area, filled with noise."""
    n, _, h, w = x.shape
    area = (0.02 + 0.23 * torch.rand(n, generator=gen)) * h * w
    ratio = torch.exp((torch.rand(n, generator=gen) * 2 - 1) * math.log(3.0))
    eh = (area * ratio).sqrt().clamp(1, h).long()
    ew = (area / ratio).sqrt().clamp(1, w).long()
    y0 = (torch.rand(n, generator=gen) * (h - eh + 1)).long()
    x0 = (torch.rand(n, generator=gen) * (w - ew + 1)).long()
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    mask = (
        (ys >= y0.view(-1, 1, 1))
        & (ys < (y0 + eh).view(-1, 1, 1))
        & (xs >= x0.view(-1, 1, 1))
        & (xs < (x0 + ew).view(-1, 1, 1))
    )
    mask &= (torch.rand(n, generator=gen) < p).view(-1, 1, 1)
    noise = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    return torch.where(mask.unsqueeze(1), noise, x)


def ten_crop(x: torch.Tensor, frac: float = 0.875) -> torch.Tensor:
    """Normalised (N, C, S, S) -> (10, N, C, S, S): 4 corners + centre, and their mirrors,
    each crop of ``frac`` of the side resized back to S (test-time augmentation)."""
    s = x.shape[-1]
    c = max(1, int(round(s * frac)))
    o = s - c
    crops = [
        x[..., :c, :c],
        x[..., :c, o:],
        x[..., o:, :c],
        x[..., o:, o:],
        x[..., o // 2 : o // 2 + c, o // 2 : o // 2 + c],
    ]
    crops = [F.interpolate(t, size=(s, s), mode="bilinear", align_corners=False) for t in crops]
    crops += [t.flip(-1) for t in crops]
    return torch.stack(crops)


def respec(x: torch.Tensor, src: PreprocessSpec, dst: PreprocessSpec) -> torch.Tensor:
    """Re-express a batch normalised for ``src`` as the input ``dst`` expects (used to feed a
    distillation teacher the student's augmented batch)."""
    if src == dst:
        return x
    mean = torch.tensor(src.mean, dtype=x.dtype).view(1, -1, 1, 1)
    std = torch.tensor(src.std, dtype=x.dtype).view(1, -1, 1, 1)
    raw = match_channels(x * std + mean, dst.channels)
    if raw.shape[-1] != dst.size:
        raw = F.interpolate(
            raw, size=(dst.size, dst.size), mode="bilinear", align_corners=False, antialias=raw.shape[-1] > dst.size
        )
    return normalize(raw, dst)
