"""Inference backends with one interface: ``backend(x) -> logits`` on a normalised float batch
(N, C, S, S), and ``backend.meta`` (labels, preprocess, temperature, model name).

``open_backend(path)`` picks by extension: ``.onnx`` -> onnxruntime, anything else -> torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..utils.errors import CheckpointError, MissingExtraError

META_KEY = "resemotenet"  # ONNX metadata_props key holding the same JSON as a checkpoint's meta


class TorchBackend:
    def __init__(self, model: nn.Module, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.meta: dict[str, Any] = dict(getattr(model, "pretrained_cfg", {}))

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.device)).float().cpu()


class OnnxBackend:
    """onnxruntime session; labels and preprocessing come from the file's metadata, or from
    explicit ``overrides`` (e.g. ``{"labels": [...], "preprocess": {...}}``) when it has none."""

    def __init__(self, path: str | Path, overrides: dict[str, Any] | None = None, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingExtraError("onnxruntime", "export") from exc
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: ONNX file not found")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise CheckpointError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from exc
        props = self.session.get_modelmeta().custom_metadata_map
        meta = json.loads(props[META_KEY]) if META_KEY in props else {}
        meta.update(overrides or {})
        missing = [k for k in ("labels", "preprocess") if k not in meta]
        if missing:
            raise CheckpointError(f"{path}: ONNX metadata lacks {missing}; pass them explicitly "
                                  "(--labels and --size)")
        meta.setdefault("temperature", 1.0)
        self.meta = meta
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().numpy().astype("float32", copy=False)})
        return torch.from_numpy(out[0])


def open_backend(model: str | Path | nn.Module | None = None, **kw: Any) -> TorchBackend | OnnxBackend:
    """A backend for a checkpoint path, an ONNX path, a loaded module, or None (the shipped model)."""
    if isinstance(model, nn.Module):
        return TorchBackend(model)
    if model is not None and str(model).endswith(".onnx"):
        return OnnxBackend(model, **kw)
    from ..models import load_model

    return TorchBackend(load_model(None if model in (None, "default") else model))
