"""resemotenet: facial emotion recognition with ResEmoteNet, trained and measured honestly.

    import resemotenet as rem
    model = rem.load_model()                      # the shipped compact model
    faces = rem.Predictor().predict("photo.jpg")  # every face: box, label, probabilities
    rem.train(rem.load_config("configs/fer2013_s.yaml"))

Names are imported on first use, so ``import resemotenet`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

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
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'resemotenet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
