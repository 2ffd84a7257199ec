"""Compose a model for the evaluator: a torch checkpoint or (by extension) an ONNX file."""

from __future__ import annotations

from typing import Any


def open_model(path: str) -> tuple[Any, dict]:
    """Return (model or forward callable, metadata) for a checkpoint path or 'default'."""
    if str(path).endswith(".onnx"):
        from ..inference.backends import OnnxBackend

        backend = OnnxBackend(path)
        return backend, backend.meta
    from ..models import load_model

    model = load_model(path)
    return model, model.pretrained_cfg
