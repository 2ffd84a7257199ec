"""Weight averaging of checkpoints (SWA-style, along one training run) with an optional
re-estimate of the batch-norm statistics on training images: averaged weights do not match the
averaged running statistics exactly, and ``torch.optim.swa_utils.update_bn`` recomputes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..card import ModelCard
from ..config import PreprocessSpec
from ..data.dataset import Split, materialize
from ..data.transforms import preprocess_batch
from ..models.checkpoint import average_states, model_from_state, save_model
from ..utils.errors import ResEmoteNetError
from ..utils.io import check_output


def recompute_bn(
    model: nn.Module, images: np.ndarray | torch.Tensor, spec: PreprocessSpec, batch_size: int = 256
) -> int:
    """Reset and re-estimate every batch norm's running mean and variance from ``images`` (uint8,
    no augmentation), as a cumulative average over all of them. Returns the number of images."""
    if len(images) == 0:
        raise ResEmoteNetError("no images to re-estimate the batch-norm statistics from")
    batches = (preprocess_batch(images[i : i + batch_size], spec) for i in range(0, len(images), batch_size))
    torch.optim.swa_utils.update_bn(batches, model)
    model.eval()
    return len(images)


def average_checkpoints(
    paths: list[str | Path],
    output: str | Path,
    bn_split: Split | None = None,
    half: bool = False,
    force: bool = False,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Average ``paths`` into ``output`` (.safetensors or .pt); ``bn_split``'s images (at the
    checkpoints' input size, un-augmented) re-estimate the batch norms."""
    output = check_output(output, force=force)
    state, meta = average_states(list(paths))
    card = ModelCard.from_meta(meta, str(paths[-1]))
    model = model_from_state(state, card, str(paths[-1]))
    n_bn = 0
    if bn_split is not None:
        spec = card.preprocess
        images = materialize(bn_split, spec.size, gray=spec.channels == 1, reduce_to=spec.reduce_to)
        with torch.no_grad():
            n_bn = recompute_bn(model, images, spec, batch_size)
        card = card.with_(extra={**dict(card.extra), "bn_recomputed_on": n_bn})
    save_model(output, model, card.to_meta(), half=half)
    return {"output": str(output), "n": len(paths), "bn_images": n_bn, "model": card.arch}
