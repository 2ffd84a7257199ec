"""resemotenet: facial emotion recognition with ResEmoteNet, trained and measured honestly.

    import resemotenet as rem
    model = rem.load_model()                      # the shipped compact model
    faces = rem.Predictor().predict("photo.jpg")  # every face: box, label, probabilities
    rem.train(rem.load_config("configs/fer2013_s.yaml"))

Names are imported on first use, so ``import resemotenet`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time names load on first use
    from .card import Framing, Metric, ModelCard
    from .config import PreprocessSpec, TrainConfig, load_config
    from .data import load as load_data
    from .data.readers import get_reader
    from .engine.evaluator import evaluate
    from .engine.trainer import train
    from .export.onnx import export_onnx
    from .export.quantize import quantize_onnx
    from .inference.backends import open_backend, read_card
    from .inference.predictor import Predictor
    from .labels import EMOTIONS7, EMOTIONS8
    from .models import create_model, list_models, load_model, save_model

_API = {
    "create_model": "resemotenet.models",
    "list_models": "resemotenet.models",
    "load_model": "resemotenet.models",
    "save_model": "resemotenet.models",
    "load_config": "resemotenet.config",
    "TrainConfig": "resemotenet.config",
    "PreprocessSpec": "resemotenet.config",
    "EMOTIONS7": "resemotenet.labels",
    "EMOTIONS8": "resemotenet.labels",
    "train": "resemotenet.engine.trainer",
    "evaluate": "resemotenet.engine.evaluator",
    "Predictor": "resemotenet.inference.predictor",
    "open_backend": "resemotenet.inference.backends",
    "export_onnx": "resemotenet.export.onnx",
    "quantize_onnx": "resemotenet.export.quantize",
    "get_reader": "resemotenet.data.readers",
    "load_data": "resemotenet.data",
    "ModelCard": "resemotenet.card",
    "Framing": "resemotenet.card",
    "Metric": "resemotenet.card",
    "read_card": "resemotenet.inference.backends",
    "open_card": "resemotenet.inference.backends",  # the older name of read_card
}

__all__ = [
    "EMOTIONS7",
    "EMOTIONS8",
    "Framing",
    "Metric",
    "ModelCard",
    "Predictor",
    "PreprocessSpec",
    "TrainConfig",
    "__version__",
    "create_model",
    "evaluate",
    "export_onnx",
    "get_reader",
    "list_models",
    "load_config",
    "load_data",
    "load_model",
    "open_backend",
    "read_card",
    "quantize_onnx",
    "save_model",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        attr = "load" if name == "load_data" else name
        return getattr(importlib.import_module(_API[name]), attr)
    raise AttributeError(f"module 'resemotenet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
