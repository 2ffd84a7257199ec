"""OpenCV's Haar frontal-face cascade (ships inside opencv-python: works offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...utils.errors import ConfigError
from .base import Detection, clip_box, sort_faces, to_gray


class HaarDetector:
    """OpenCV's Haar frontal-face cascade, run on a downscaled grayscale copy of the frame.

    Speed is set by the smallest face searched for: the frame is shrunk by ``24 / min_face``
    (24 px is the cascade's window), so a 640x480 frame is searched at 320x240 with the default
    ``min_face=48``; faces smaller than that are not reported (a model trained on 48x48 faces
    gains nothing from them). 64 is ~1.8x faster but misses ~100 px faces now and then (a face
    must span well over the 24 px window to be found reliably). Lower it for group photos with small faces.
    ``scale_factor`` 1.1 is OpenCV's default pyramid step (1.2 is ~1.6x faster, misses more);
    ``min_neighbors`` 5 trades a few missed faces for far fewer false ones.
    """

    name = "haar"

    def __init__(
        self, min_face: int = 48, scale_factor: float = 1.1, min_neighbors: int = 5, cascade: str | Path | None = None
    ):
        import cv2

        if min_face < 8 or scale_factor <= 1.0 or min_neighbors < 0:
            raise ConfigError("haar: need min_face >= 8, scale_factor > 1 and min_neighbors >= 0")
        path = Path(cascade) if cascade else Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path)) if path.is_file() else None
        if self.cascade is None or self.cascade.empty():
            raise ConfigError(f"{path}: not a readable Haar cascade file")
        self.min_face, self.scale_factor, self.min_neighbors = min_face, scale_factor, min_neighbors

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        gray = to_gray(rgb)
        h, w = gray.shape[:2]
        scale = min(1.0, 24.0 / self.min_face)
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        found = self.cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(24, 24)
        )
        out = []
        for x, y, bw, bh in np.asarray(found, dtype=np.float64).reshape(-1, 4) / scale:
            box = clip_box(x, y, x + bw, y + bh, w, h)
            if box:
                out.append(Detection(box))
        return sort_faces(out)
