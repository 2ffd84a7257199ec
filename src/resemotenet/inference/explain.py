"""Where the model looked: Grad-CAM (Selvaraju et al., ICCV 2017) on ResEmoteNet's feature maps.

For one face crop, the class score's gradient with respect to a block's output, averaged over
the map, weighs that block's channels; the ReLU of the weighted sum, upsampled to the crop, is
the heat map. One forward hook and one backward pass, no extra dependency.

The default block is ``se``, the last map before the residual stages (12x12 for the shipped
96x96 model, 6x6 for the 48x48 ``fast``). Measured on 60 PublicTest faces by deletion (grey out
the hottest quarter of the crop, see how much the predicted class's probability falls, against
the same mask shifted at random): ``se`` 0.33 vs 0.17 (default model) and 0.32 vs 0.19 (fast);
``res_block1`` 0.37 vs 0.25 and 0.40 vs 0.33; the last block, ``res_block3`` (2x2 and 1x1),
0.25 vs 0.20 and 0.54 vs 0.54, no better than chance. Those figures are for the models shipped
until 2026-12-04. A model card may name its own block (``explain_layer`` in its metadata): for the
stage-4 ``default`` (300 PublicTest faces, the same deletion measure) ``se`` gives 0.265 vs 0.182
(1.46x), ``res_block1`` 0.328 vs 0.205 (1.60x) and ``res_block2`` (3x3) 0.265 vs 0.166 (1.60x);
its card names ``res_block2``, the one of the two tied blocks whose map on the shipped photo sits
on the mouth. ``layer=`` picks another block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..card import ModelCard
from ..utils.errors import CheckpointError, ConfigError, DataError

LAYERS = ("se", "res_block1", "res_block2", "res_block3")
DEFAULT_LAYER = "se"


def _torch_model(model_or_predictor: Any) -> nn.Module:
    """The plain (unfused) torch module behind a model or a Predictor."""
    if isinstance(model_or_predictor, nn.Module):
        return model_or_predictor
    if hasattr(model_or_predictor, "torch_model"):
        return model_or_predictor.torch_model()  # a Predictor: its own unfused module, loaded once
    from .predictor import load_torch_model

    return load_torch_model(getattr(model_or_predictor, "model_source", None))


def explain(
    model_or_predictor: Any, face_crop: np.ndarray, target: int | str | None = None, layer: str | None = None
) -> np.ndarray:
    """Grad-CAM heat map (H, W) float32 in [0, 1] over a uint8 face crop (H, W) or (H, W, 3), for
    class ``target`` (an index or label; default: the predicted class). ``layer`` overrides the
    block (see the module notes). A map that is zero everywhere means no evidence for the class."""
    model = _torch_model(model_or_predictor)
    from ..models.checkpoint import card_of

    try:
        card = card_of(model)
    except CheckpointError as exc:
        raise ConfigError(str(exc)) from None
    crop = np.asarray(face_crop)
    if crop.dtype != np.uint8 or crop.ndim not in (2, 3) or (crop.ndim == 3 and crop.shape[2] != 3) or 0 in crop.shape:
        raise DataError(f"expected a uint8 face crop shaped (H, W) or (H, W, 3), got {crop.dtype} {crop.shape}")
    layer = layer or card.explain_layer or DEFAULT_LAYER  # the card may name its own
    block = getattr(model, layer, None)
    if not isinstance(block, nn.Module):
        raise ConfigError(f"{type(model).__name__} has no block {layer!r}; valid: {', '.join(LAYERS)}")
    x = card.transforms()([crop])  # the model card's one preprocessing
    seen: list[torch.Tensor] = []
    hook = block.register_forward_hook(lambda m, i, o: seen.append(o))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            logits = model(x)
            cls = _target(target, card, logits)
            (grad,) = torch.autograd.grad(logits[0, cls], seen[-1])
    finally:
        hook.remove()
        model.train(was_training)
    acts = seen[-1].detach()
    cam = torch.relu((grad.mean((2, 3), keepdim=True) * acts).sum(1, keepdim=True))  # (1, 1, h, w)
    cam = nn.functional.interpolate(cam, size=crop.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    top = float(cam.max())
    return (cam / top if top > 0 else cam).numpy().astype(np.float32)


def _target(target: int | str | None, card: ModelCard, logits: torch.Tensor) -> int:
    labels = list(card.labels)
    if target is None:
        return int(logits[0].argmax())
    if isinstance(target, str):
        if target not in labels:
            raise ConfigError(f"unknown label {target!r}; valid: {', '.join(labels)}")
        return labels.index(target)
    if not 0 <= int(target) < logits.shape[1]:
        raise ConfigError(f"target class {target} out of range 0..{logits.shape[1] - 1}")
    return int(target)


def explain_faces(predictor: Any, image: np.ndarray) -> list[tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]]:
    """(box, face crop exactly as the Predictor classifies it, heat map) for every face of an RGB
    frame; each map explains the class the model predicts for that crop."""
    return [(box, crop, explain(predictor, crop)) for box, crop in predictor.detect(image)]


def overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.45, min_side: int = 192) -> np.ndarray:
    """RGB image: the crop (enlarged to at least ``min_side`` px) under the heat map in colour."""
    import cv2

    rgb = np.repeat(crop[..., None], 3, axis=2) if crop.ndim == 2 else crop
    scale = max(1.0, min_side / min(rgb.shape[:2]))
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
    colour = cv2.applyColorMap(cv2.resize((heat * 255).astype(np.uint8), size), cv2.COLORMAP_JET)[..., ::-1]
    return cv2.addWeighted(rgb, 1 - alpha, colour, alpha, 0)


class ExplainOutput:
    """``resemotenet predict --explain DIR``: one heat-map overlay PNG per face,
    ``<image or video name>[_f<frame>]_face<i>.png``, faces numbered left to right."""

    def __init__(self, root: str | Path, predictor: Any):
        self.root, self.predictor = Path(root), predictor
        self.written = 0
        _torch_model(predictor)  # an ONNX model fails now, not at the first face

    def frame(self, name: str, image: np.ndarray, frame: int | None = None) -> None:
        import cv2

        stem = Path(name).stem + ("" if frame is None else f"_f{frame:06d}")
        for i, (_, crop, heat) in enumerate(explain_faces(self.predictor, image), 1):
            path = self.root / Path(name).parent / f"{stem}_face{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), overlay(crop, heat)[..., ::-1]):
                raise DataError(f"{path}: cannot write the heat map")
            self.written += 1
