"""Fine-tuning a trained model on a site's own faces: small data, served exactly as measured.

The faces are prepared by the base model's own card (``resize_face`` with its ``reduce_to``,
its channels), so what the fine-tune trains on is what the served model will see; the weights
start from the base model and only the chosen part learns:

- ``head``: the four fully connected layers (the features stay FER2013's);
- ``partial``: the last residual block and the head;
- ``full``: everything (the stem included).

Against forgetting, ``rehearsal`` mixes FER2013 training faces into every batch (that share of
each batch; 0 = off). The epoch is chosen on a validation part carved by group, never on the
held-out faces the before/after is measured on. ``benchmarks/site_adaptation.py`` compares the
recipes; ``FinetuneRecipe()`` holds the measured choice.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..card import ModelCard
from ..config import AugmentConfig
from ..data.transforms import augment_batch
from ..preprocess import as_rgb_crop, resize_face
from ..utils.errors import ConfigError, DataError

PARTS = {
    "head": ("fc1", "fc2", "fc3", "fc4"),
    "partial": ("res_block3", "fc1", "fc2", "fc3", "fc4"),
    "full": None,
}
# camera-like augmentation for a few hundred faces: stage 4's geometry and degradations
SITE_AUGMENT = AugmentConfig(
    hflip=0.5,
    shift=0.1,
    scale=(0.9, 1.1),
    rotate=10,
    brightness=0.2,
    contrast=0.2,
    gamma=0.4,
    blur=0.2,
    noise=0.2,
    erasing=0.1,
)


@dataclass(frozen=True)
class FinetuneRecipe:
    """How a site fine-tune trains. Defaults: the recipe chosen by ``benchmarks/site_adaptation.py``."""

    # full: on SFEW by movie (benchmarks/site_adaptation.py, seed 0) 51.4 / 50.0 % on unseen movies
    # with 200 / 429 labels against partial's 47.4 / 50.2 and head's 47.0 / 47.4, FER2013
    # PublicTest within 0.6 points of the base with rehearsal (README, "What a pilot can expect")
    layers: str = "full"
    epochs: int = 12
    lr: float = 0.003
    batch_size: int = 32
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    augment: bool = True
    rehearsal: float = 0.5  # share of every batch taken from FER2013 training faces (when given)
    min_per_class: int = 2  # labelled training faces a class needs before the fine-tune starts
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layers not in PARTS:
            raise ConfigError(f"layers must be one of {', '.join(PARTS)}, got {self.layers!r}")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0 or not 0.0 <= self.rehearsal < 1.0:
            raise ConfigError("epochs >= 1, batch_size >= 2, lr > 0 and rehearsal in [0, 1) please")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prepare_faces(crops: list[np.ndarray], card: ModelCard) -> np.ndarray:
    """uint8 (N, size, size[, 3]) as the card's transform would resize them (``reduce_to`` too)."""
    import cv2

    spec = card.preprocess
    out = []
    for c in crops:
        r = resize_face(as_rgb_crop(np.asarray(c)), spec.size, spec.reduce_to)
        if spec.channels == 1 and r.ndim == 3:
            r = cv2.cvtColor(r, cv2.COLOR_RGB2GRAY)
        elif spec.channels == 3 and r.ndim == 2:
            r = np.repeat(r[..., None], 3, axis=-1)
        out.append(r)
    return np.stack(out) if out else np.zeros((0, spec.size, spec.size), np.uint8)


def _nchw(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)


def check_enough(labels: np.ndarray, names: tuple[str, ...], minimum: int) -> None:
    """Refuse a fine-tune whose labelled classes hold too few faces, naming what is missing."""
    counts = np.bincount(labels, minlength=len(names))
    short = [f"{names[i]} {counts[i]}" for i in range(len(names)) if 0 < counts[i] < minimum]
    if len(labels) == 0 or (counts > 0).sum() < 2:
        raise DataError(
            f"a fine-tune needs labelled faces of at least 2 classes, {minimum} or more each; got {len(labels)}"
        )
    if short:
        raise DataError(
            f"too few labelled training faces for a fine-tune: {', '.join(short)} "
            f"(each class present needs at least {minimum}; label more or leave the class out)"
        )


def _trainable(model: nn.Module, layers: str) -> list[nn.Parameter]:
    keep = PARTS[layers]
    params = []
    for name, p in model.named_parameters():
        on = keep is None or name.split(".")[0] in keep
        p.requires_grad_(on)
        if on:
            params.append(p)
    return params


def _logits(model: nn.Module, x: np.ndarray, card: ModelCard, batch: int = 256) -> np.ndarray:
    from ..preprocess import preprocess_batch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(model(preprocess_batch(_nchw(x[i : i + batch]), card.preprocess)).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(card.labels)), np.float32)


def fit(
    model: nn.Module,
    card: ModelCard,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    recipe: FinetuneRecipe,
    rehearsal: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> tuple[nn.Module, list[dict[str, float]], int]:
    """Fine-tune ``model`` on ``train`` = (uint8 faces from ``prepare_faces``, labels); choose the
    epoch on ``val`` (accuracy, then loss). Returns (best model, one row per epoch, best epoch;
    0 = the base model was best). ``rehearsal``: FER2013 faces and labels mixed into batches."""
    check_enough(train[1], tuple(card.labels), recipe.min_per_class)
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    model = copy.deepcopy(model).float()
    params = _trainable(model, recipe.layers)
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay)
    n_site = len(train[1])
    site_per_batch = max(1, round(recipe.batch_size * (1 - recipe.rehearsal))) if rehearsal else recipe.batch_size
    steps = max(1, math.ceil(n_site / site_per_batch))
    total = steps * recipe.epochs
    best, best_key, best_epoch, rows = copy.deepcopy(model.state_dict()), _score(model, card, val), 0, []
    rows.append({"epoch": 0, "train_loss": float("nan"), "val_acc": best_key[0], "val_loss": -best_key[1]})
    spec = card.preprocess
    aug = SITE_AUGMENT if recipe.augment else AugmentConfig(hflip=0.5)
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        _freeze_norm_outside(model, recipe.layers)
        order, losses = rng.permutation(n_site), []
        for s in range(steps):
            step = (epoch - 1) * steps + s
            for g in opt.param_groups:
                g["lr"] = recipe.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            idx = order[s * site_per_batch : (s + 1) * site_per_batch]
            x, y = train[0][idx], train[1][idx]
            if rehearsal is not None:
                j = rng.integers(0, len(rehearsal[1]), recipe.batch_size - len(idx))
                x, y = np.concatenate([x, rehearsal[0][j]]), np.concatenate([y, rehearsal[1][j]])
            xb = augment_batch(_nchw(x), spec, aug, gen)
            loss = F.cross_entropy(model(xb), torch.as_tensor(y), label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        key = _score(model, card, val)
        rows.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_acc": key[0], "val_loss": -key[1]})
        if key > best_key:
            best, best_key, best_epoch = copy.deepcopy(model.state_dict()), key, epoch
        if progress is not None:
            progress(epoch, recipe.epochs, rows[-1])
    model.load_state_dict(best)
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval(), rows, best_epoch


def _freeze_norm_outside(model: nn.Module, layers: str) -> None:
    """BatchNorm statistics of frozen parts stay FER2013's (a few hundred faces would shift them)."""
    keep = PARTS[layers]
    if keep is None:
        return
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and name.split(".")[0] not in keep:
            m.eval()


def _score(model: nn.Module, card: ModelCard, val: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    """(accuracy, minus mean NLL) on the validation faces: the key epochs are chosen by."""
    if len(val[1]) == 0:
        return (0.0, 0.0)
    logits = torch.as_tensor(_logits(model, val[0], card))
    y = torch.as_tensor(val[1])
    return float((logits.argmax(1) == y).float().mean()), -float(F.cross_entropy(logits, y))


def logits_of(model: nn.Module, faces: np.ndarray, card: ModelCard) -> np.ndarray:
    """Logits for prepared faces (``prepare_faces``), in evaluation mode."""
    return _logits(model, faces, card)
