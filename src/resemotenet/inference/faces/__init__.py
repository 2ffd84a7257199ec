"""Face detectors by name: every face in an RGB frame as integer boxes (x0, y0, x1, y1).

``centerface`` (the default; ``inference.centerface``) is a small CNN whose ONNX file ships inside
the package; it finds turned and partly covered faces and gives 5 landmarks, which ``align_face``
uses to level the eyes. ``haar`` is OpenCV's frontal-face cascade: it ships inside opencv-python,
so it works offline with no extra download. ``mediapipe`` (BlazeFace) finds turned and small faces
better, gives eye landmarks too, and needs the ``mediapipe`` package. ``yunet`` (``cv2.FaceDetectorYN``) is the most
accurate of the three and needs its ONNX file (``face_detection_yunet_2023mar.onnx`` from the
OpenCV model zoo), given by path: nothing is downloaded.

A detector is any callable ``detector(rgb) -> list[Detection]``; the Predictor accepts one
directly, so a team can plug in its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...utils.errors import ConfigError
from .base import Box, Detection, Points, align_face, clip_box, crop, expand_box, sort_faces, to_gray
from .haar import HaarDetector
from .mediapipe import MediaPipeDetector
from .yunet import YuNetDetector

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "Box",
    "Detection",
    "HaarDetector",
    "MediaPipeDetector",
    "Points",
    "YuNetDetector",
    "align_face",
    "clip_box",
    "create_detector",
    "crop",
    "expand_box",
    "list_detectors",
    "sort_faces",
    "to_gray",
]


def _centerface(**options: Any) -> Callable[[np.ndarray], list[Detection]]:
    from .centerface import CenterFaceDetector  # onnxruntime or cv2.dnn: loaded on first use

    return CenterFaceDetector(**options)


DETECTORS: dict[str, Callable[..., Callable[[np.ndarray], list[Detection]]]] = {
    "centerface": _centerface,
    "haar": HaarDetector,
    "mediapipe": MediaPipeDetector,
    "yunet": YuNetDetector,
}
DEFAULT_DETECTOR = "centerface"


def list_detectors() -> list[str]:
    return sorted(DETECTORS)


def create_detector(name: str, **options: Any) -> Callable[[np.ndarray], list[Detection]]:
    """A detector by registry name; ``options`` go to its constructor (e.g. ``min_face=40``)."""
    if name not in DETECTORS:
        raise ConfigError(f"unknown face detector {name!r}; valid detectors: {', '.join(list_detectors())}")
    try:
        return DETECTORS[name](**options)
    except TypeError as exc:
        raise ConfigError(f"face detector {name!r}: {exc}") from exc


def __getattr__(name: str) -> Any:
    """``FaceFollower`` lives in ``inference.tracking`` now (this spelling kept for one release)."""
    if name == "FaceFollower":
        from ..tracking import FaceFollower

        return FaceFollower
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
