"""Compose a model for the evaluator: a torch checkpoint or (by extension) an ONNX file."""

from __future__ import annotations

from typing import Any


def open_model(path: str) -> tuple[Any, Any]:
    """(model or forward callable, its ModelCard) for a checkpoint path, an .onnx file or a shipped name."""
    if str(path).endswith(".onnx"):
        from ..inference.backends import OnnxBackend

        backend = OnnxBackend(path)
        return backend, backend.card
    from ..models import load_model

    model = load_model(path)
    return model, model.card
