"""``cv2.FaceDetectorYN`` (YuNet) with a user-supplied ONNX model: nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...utils.errors import ConfigError
from .base import Detection, clip_box, sort_faces


class YuNetDetector:
    """``cv2.FaceDetectorYN`` with a user-supplied ONNX model; frames wider than ``max_side``
    are shrunk first (the network's cost grows with the pixel count)."""

    name = "yunet"

    def __init__(
        self,
        model_path: str | Path | None = None,
        min_score: float = 0.7,
        nms_threshold: float = 0.3,
        max_side: int = 640,
    ):
        import cv2

        if not model_path:
            raise ConfigError(
                "yunet needs its ONNX model: pass --yunet-model PATH "
                "(face_detection_yunet_2023mar.onnx from the OpenCV model zoo)"
            )
        path = Path(model_path)
        if not path.is_file():
            raise ConfigError(f"{path}: YuNet model file not found")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ConfigError(f"OpenCV {cv2.__version__} has no FaceDetectorYN (need >= 4.8)")
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), min_score, nms_threshold, 5000)
        except cv2.error as exc:
            reason = str(exc).strip().splitlines()[-1][:160]
            raise ConfigError(f"{path}: not a loadable YuNet model ({reason})") from exc
        self.max_side = max_side

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        h, w = rgb.shape[:2]
        bgr = cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR if rgb.ndim == 2 else cv2.COLOR_RGB2BGR)
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            bgr = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = self._net.detect(bgr)
        out = []
        for row in faces if faces is not None else np.zeros((0, 15)):
            x, y, bw, bh = row[:4] / scale
            box = clip_box(x, y, x + bw, y + bh, w, h)
            if box:
                out.append(Detection(box, float(row[14])))
        return sort_faces(out)
