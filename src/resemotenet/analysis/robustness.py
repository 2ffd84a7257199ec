"""Accuracy under common image corruptions: Gaussian noise, blur, low light, JPEG, occlusion.

Why: a webcam in a dim room, a heavily compressed video frame or a hand in front of the mouth
are what a deployed model meets; clean test accuracy says nothing about them. Corruptions act on
the uint8 face crops *before* preprocessing (as a camera would), three severities each, seeded
so two runs (and two models) see exactly the same corrupted images. Severity parameters are
defined for a 48-pixel face and scaled with the image side where size matters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import PreprocessSpec
from ..data.dataset import Split, materialize
from ..engine.evaluator import evaluate
from ..utils.errors import ConfigError

Corruption = Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]

# name -> parameter per severity 1, 2, 3
SEVERITIES: dict[str, tuple[Any, ...]] = {
    "gaussian_noise": (8.0, 16.0, 32.0),  # sigma in grey levels
    "blur": (0.75, 1.5, 2.5),  # Gaussian sigma in pixels of a 48-pixel face
    "low_light": ((1.5, 0.7), (2.0, 0.5), (2.5, 0.3)),  # (gamma, gain)
    "jpeg": (40, 20, 8),  # JPEG quality
    "occlusion": (0.2, 0.3, 0.4),  # side of a black square, as a fraction of the face side
}


def _noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = images.astype(np.float32) + rng.normal(0.0, sigma, images.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _blur(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    import cv2

    s = sigma * images.shape[1] / 48.0
    return np.stack([cv2.GaussianBlur(im, (0, 0), s, borderType=cv2.BORDER_REFLECT) for im in images])


def _low_light(images: np.ndarray, param: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    gamma, gain = param
    lut = np.rint(255.0 * (np.arange(256) / 255.0) ** gamma * gain).astype(np.uint8)
    return lut[images]


def _jpeg(images: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    out = np.empty_like(images)
    flag = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
    for i, im in enumerate(images):
        bgr = im if im.ndim == 2 else cv2.cvtColor(im, cv2.COLOR_RGB2BGR)
        _, buf = cv2.imencode(".jpg", bgr, flag)
        dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        out[i] = dec if im.ndim == 2 else cv2.cvtColor(dec, cv2.COLOR_BGR2RGB)
    return out


def _occlusion(images: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    n, h, w = images.shape[:3]
    ph, pw = max(1, round(h * frac)), max(1, round(w * frac))
    y0 = rng.integers(0, h - ph + 1, n)
    x0 = rng.integers(0, w - pw + 1, n)
    ys, xs = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    mask = (
        (ys >= y0[:, None, None])
        & (ys < (y0 + ph)[:, None, None])
        & (xs >= x0[:, None, None])
        & (xs < (x0 + pw)[:, None, None])
    )
    out = images.copy()
    out[mask] = 0
    return out


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": _noise,
    "blur": _blur,
    "low_light": _low_light,
    "jpeg": _jpeg,
    "occlusion": _occlusion,
}


def parse_corruptions(spec: str | list[str]) -> list[str]:
    """``"all"`` or a comma-separated list -> validated names (unknown names list the valid ones)."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    if names == ["all"]:
        return list(CORRUPTIONS)
    bad = [n for n in names if n not in CORRUPTIONS]
    if bad or not names:
        raise ConfigError(f"unknown corruption(s) {bad or names}; valid: all, {', '.join(CORRUPTIONS)}")
    return names


def parse_severities(spec: str | list[int]) -> list[int]:
    try:
        levels = [int(s) for s in (spec.split(",") if isinstance(spec, str) else spec)]
    except ValueError:
        raise ConfigError(f"severities must be integers among 1, 2, 3, got {spec!r}") from None
    if not levels or any(s not in (1, 2, 3) for s in levels):
        raise ConfigError(f"severities must be among 1, 2, 3, got {spec!r}")
    return levels


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Corrupted copy of uint8 images (N, H, W) or (N, H, W, 3); same seed, same result."""
    parse_corruptions([name])
    parse_severities([severity])
    rng = np.random.default_rng([seed, list(CORRUPTIONS).index(name), severity])
    return CORRUPTIONS[name](np.asarray(images, np.uint8), SEVERITIES[name][severity - 1], rng)


def evaluate_corruptions(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    split: Split,
    labels: tuple[str, ...] | list[str],
    spec: PreprocessSpec,
    corruptions: str | list[str] = "all",
    severities: str | list[int] = (1, 2, 3),
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Accuracy and macro-F1 on the clean split and under every corruption x severity."""
    names, levels = parse_corruptions(corruptions), parse_severities(severities)
    images = materialize(split, spec.size, reduce_to=spec.reduce_to)

    def score(imgs: np.ndarray) -> dict[str, float]:
        m = evaluate(
            model, replace(split, images=imgs, paths=None), labels, spec, temperature=temperature, batch_size=batch_size
        )
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "ece": m["ece"]}

    clean = score(images)
    table = {n: {str(s): score(corrupt(images, n, s, seed)) for s in levels} for n in names}
    accs = [r["accuracy"] for per in table.values() for r in per.values()]
    mean = float(np.mean(accs))
    return {
        "split": split.name,
        "n": len(split),
        "seed": seed,
        "severities": levels,
        "params": {n: [SEVERITIES[n][s - 1] for s in levels] for n in names},
        "clean": clean,
        "corruptions": table,
        "mean_corrupted_accuracy": mean,
        "relative_accuracy": mean / clean["accuracy"] if clean["accuracy"] > 0 else float("nan"),
    }


def format_table(result: dict[str, Any]) -> str:
    """Plain-text table: one row per corruption, one column per severity (accuracy)."""
    levels = result["severities"]
    head = f"{'corruption':16s}" + "".join(f"  sev {s:<5d}" for s in levels)
    lines = [head, f"{'clean':16s}  {result['clean']['accuracy']:.4f}"]
    for name, per in result["corruptions"].items():
        lines.append(f"{name:16s}" + "".join(f"  {per[str(s)]['accuracy']:.4f}   " for s in levels))
    lines.append(
        f"mean corrupted accuracy {result['mean_corrupted_accuracy']:.4f} "
        f"({100 * result['relative_accuracy']:.1f} % of clean)"
    )
    return "\n".join(lines)
