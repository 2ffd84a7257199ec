"""Evaluation: probabilities from any model (torch module or a backend callable), metrics,
test-time augmentation, and evaluation over the labels two label sets share."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import PreprocessSpec
from ..data.dataset import Split, materialize
from ..data.transforms import ten_crop
from ..labels import shared_labels
from ..metrics import classification_metrics
from ..preprocess import FaceTransform
from ..utils.errors import DataError
from ..utils.progress import track

TTA = ("none", "flip", "tencrop")
Forward = Callable[[torch.Tensor], torch.Tensor]


def _forward_fn(model: nn.Module | Forward, device: torch.device | None, amp: bool = False) -> Forward:
    if not isinstance(model, nn.Module):
        return model
    model.eval()
    dev = device or next(model.parameters()).device

    @torch.inference_mode()
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            return model(x.to(dev)).float().cpu()

    return run


def predict_probs(
    model: nn.Module | Forward,
    images: np.ndarray | torch.Tensor,
    spec: PreprocessSpec,
    temperature: float = 1.0,
    batch_size: int = 256,
    tta: str = "none",
    device: torch.device | None = None,
    amp: bool = False,
    progress: bool = True,
) -> np.ndarray:
    """Class probabilities (N, C) for uint8 images; TTA averages the probabilities of the views;
    a progress bar on a terminal unless ``progress`` is False."""
    if tta not in TTA:
        raise DataError(f"unknown test-time augmentation {tta!r}; valid: {', '.join(TTA)}")
    forward = _forward_fn(model, device, amp)
    transform = FaceTransform(spec)  # what ModelCard.transforms() returns: one preprocessing everywhere
    out = []
    starts = range(0, len(images), batch_size)
    for i in track(starts, total=len(starts), desc=f"scoring {len(images):,} faces", unit="batch", enabled=progress):
        x = transform(images[i : i + batch_size])
        views = {"none": x.unsqueeze(0), "flip": torch.stack([x, x.flip(-1)]), "tencrop": None}[tta]
        if views is None:
            views = ten_crop(x)
        logits = forward(views.flatten(0, 1)).view(views.shape[0], x.shape[0], -1)
        out.append(torch.softmax(logits / temperature, -1).mean(0).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def restrict(
    probs: np.ndarray, y: np.ndarray, model_labels: tuple[str, ...], data_labels: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Keep the labels both sets share: samples of other classes are dropped and the model's
    probabilities are renormalised over the shared classes."""
    shared = shared_labels(tuple(data_labels), tuple(model_labels))
    if not shared:
        raise DataError(f"model labels {list(model_labels)} and data labels {list(data_labels)} share nothing")
    cols = [list(model_labels).index(n) for n in shared]
    data_to_shared = {list(data_labels).index(n): j for j, n in enumerate(shared)}
    keep = np.array([int(v) in data_to_shared for v in y], bool)
    p = probs[keep][:, cols]
    p = p / np.clip(p.sum(1, keepdims=True), 1e-12, None)
    return p, np.array([data_to_shared[int(v)] for v in y[keep]], np.int64), shared


@dataclass(frozen=True)
class EvalResult(Mapping):
    """Metrics of one evaluation (read like a dict: ``r["accuracy"]``), with the per-sample
    probabilities, targets and ids of exactly the samples scored, in the same order."""

    metrics: dict[str, Any]
    probs: np.ndarray = field(repr=False)
    targets: np.ndarray = field(repr=False)
    ids: tuple[str, ...] = field(repr=False, default=())

    def __getitem__(self, key: str) -> Any:
        return self.metrics[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        """The metrics, JSON-ready (per-sample arrays are not included)."""
        return dict(self.metrics)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> EvalResult:
        """Metrics read back from ``to_json`` (the per-sample arrays are not stored there)."""
        return cls(json.loads(text), np.zeros((0, 0), np.float32), np.zeros(0, np.int64))


def evaluate(
    model: nn.Module | Forward,
    split: Split,
    model_labels: tuple[str, ...] | list[str],
    spec: PreprocessSpec,
    temperature: float = 1.0,
    tta: str = "none",
    batch_size: int = 256,
    device: torch.device | None = None,
    amp: bool = False,
    only_present: bool = False,
    progress: bool = True,
) -> EvalResult:
    """Metrics of ``model`` on ``split``; label sets that differ are compared on shared labels.

    ``only_present`` restricts the model's choice to the classes that occur in ``split`` (a team's
    folder of test faces with four of the seven emotions is scored as a four-way problem)."""
    images = materialize(split, spec.size, reduce_to=spec.reduce_to)
    probs = predict_probs(model, images, spec, temperature, batch_size, tta, device, amp, progress)
    model_labels, data_labels = tuple(model_labels), tuple(split.label_names)
    y = split.labels
    if only_present:
        present = tuple(n for i, n in enumerate(data_labels) if np.any(y == i))
        y = np.array([present.index(data_labels[int(v)]) for v in y], np.int64)
        data_labels = present
    note = None
    ids = list(split.ids)
    if model_labels != data_labels:
        ids = [i for i, v in zip(ids, y) if data_labels[int(v)] in model_labels]
        probs, y, shared = restrict(probs, y, model_labels, data_labels)
        note = (
            f"labels differ: model {list(model_labels)} vs data {list(data_labels)}; "
            f"evaluated on the {len(shared)} shared labels ({len(y)} of {len(split)} samples)"
        )
        labels = shared
    else:
        labels = model_labels
    m = classification_metrics(probs, y, labels)
    m.update({"split": split.name, "tta": tta, "temperature": temperature})
    if note:
        m["note"] = note
    return EvalResult(m, probs, y, tuple(ids))
