"""BlazeFace through the optional ``mediapipe`` package."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...utils.errors import ConfigError, extra_error
from .base import Detection, Points, clip_box, sort_faces


def _blazeface_points(det: Any, width: int, height: int) -> Points | None:
    """BlazeFace's keypoints (eyes, nose tip, mouth centre, ears) as ``Detection.landmarks``: the
    two eyes first, the one on the image's left first, then the nose tip and the mouth centre."""
    kps = list(det.location_data.relative_keypoints)
    if len(kps) < 2:
        return None
    eyes = sorted(((kp.x * width, kp.y * height) for kp in kps[:2]), key=lambda p: p[0])
    return tuple(eyes) + tuple((kp.x * width, kp.y * height) for kp in kps[2:4])


class MediaPipeDetector:
    """BlazeFace through the ``mediapipe`` package (its model is inside the wheel).

    ``model_selection`` 1 is the full-range model (faces up to ~5 m away; photos), 0 the
    short-range one (a face within ~2 m of a webcam; faster).
    """

    name = "mediapipe"

    def __init__(self, min_score: float = 0.5, model_selection: int = 1):
        try:
            import mediapipe as mp
        except ImportError as exc:
            if (exc.name or "mediapipe").split(".")[0] == "mediapipe":
                raise extra_error("mediapipe", "mediapipe", exc) from exc
            raise ConfigError(
                f"mediapipe is installed but cannot be imported ({exc}); reinstall it: "
                "pip install 'resemotenet[mediapipe]'"
            ) from exc
        solutions = getattr(mp, "solutions", None)
        if solutions is None or not hasattr(solutions, "face_detection"):
            raise ConfigError(
                f"mediapipe {getattr(mp, '__version__', '?')} lacks solutions.face_detection; "
                "install the tested version: pip install 'resemotenet[mediapipe]'"
            )
        self._fd = solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=min_score
        )

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        img = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB) if rgb.ndim == 2 else rgb
        h, w = img.shape[:2]
        result = self._fd.process(np.ascontiguousarray(img))
        out = []
        for det in result.detections or []:
            r = det.location_data.relative_bounding_box
            box = clip_box(r.xmin * w, r.ymin * h, (r.xmin + r.width) * w, (r.ymin + r.height) * h, w, h)
            if box:
                out.append(Detection(box, float(det.score[0]), _blazeface_points(det, w, h)))
        return sort_faces(out)

    def close(self) -> None:
        self._fd.close()
