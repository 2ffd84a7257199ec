"""What every detector returns and how a face box becomes a crop: ``Detection``, ``expand_box``,
``crop`` and ``align_face`` (the geometry the model card's framing is applied with)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...utils.errors import ConfigError, DataError

Box = tuple[int, int, int, int]
Points = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Detection:
    """One face: ``box`` = (x0, y0, x1, y1) in pixels of the frame (x1, y1 exclusive);
    ``landmarks``, when the detector gives them: (x, y) in pixels of the frame, the left and right
    eye first ("left" = on the image's left), then what else the detector finds: the nose and the
    left and right mouth corners (centerface), the nose tip and the mouth centre (mediapipe)."""

    box: Box
    score: float = 1.0
    landmarks: Points | None = None

    def shifted(self, dx: int, dy: int) -> Detection:
        """The same face moved by (dx, dy) pixels: from a window's coordinates to its frame's."""
        x0, y0, x1, y1 = self.box
        pts = None if self.landmarks is None else tuple((x + dx, y + dy) for x, y in self.landmarks)
        return Detection((x0 + dx, y0 + dy, x1 + dx, y1 + dy), self.score, pts)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def sort_faces(dets: list[Detection]) -> list[Detection]:
    """Left to right, then top to bottom: a stable order for the faces of a group photo."""
    return sorted(dets, key=lambda d: (d.box[0], d.box[1]))


def clip_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box | None:
    box = (max(0, round(x0)), max(0, round(y0)), min(width, round(x1)), min(height, round(y1)))
    return box if box[2] > box[0] and box[3] > box[1] else None


def expand_box(box: Box, margin: float, width: int, height: int, square: bool = True) -> Box:
    """The crop around a face box: squared on its longer side (the model sees square faces,
    so a non-square crop would be stretched), grown by ``margin`` x its side in total (half
    on each side), and clipped to the ``width`` x ``height`` image."""
    if margin < 0:
        raise ConfigError(f"margin must be >= 0, got {margin}")
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bw, bh = x1 - x0, y1 - y0
    if square:
        bw = bh = max(bw, bh)
    bw, bh = bw * (1 + margin), bh * (1 + margin)
    clipped = clip_box(cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, width, height)
    if clipped is None:
        raise DataError(f"face box {box} lies outside the {width}x{height} image")
    return clipped


def crop(rgb: np.ndarray, box: Box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(rgb[y0:y1, x0:x1])


def align_face(rgb: np.ndarray, box: Box, landmarks: Points, margin: float, min_angle: float = 3.0) -> np.ndarray:
    """The crop ``expand_box`` gives (square, grown by ``margin``), taken from the frame rotated
    about the box centre so that the line through the eyes (``landmarks[0]``, ``landmarks[1]``)
    is level. Below ``min_angle`` degrees of tilt the plain crop is returned: FER2013's own faces
    tilt that much, and resampling would only blur. A rotated crop keeps its full square at the
    frame's border (edge pixels repeated) instead of being clipped, so the face is not stretched."""
    import cv2

    if margin < 0:
        raise ConfigError(f"margin must be >= 0, got {margin}")
    if len(landmarks) < 2:
        raise DataError(f"align_face needs the two eye landmarks, got {len(landmarks)} point(s)")
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
    h, w = rgb.shape[:2]
    if abs(angle) < min_angle:
        return crop(rgb, expand_box(box, margin, w, h))
    x0, y0, x1, y1 = box
    side = max(1, round(max(x1 - x0, y1 - y0) * (1 + margin)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    m[:, 2] += (side / 2 - cx, side / 2 - cy)  # the box centre lands at the crop centre
    return cv2.warpAffine(rgb, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
