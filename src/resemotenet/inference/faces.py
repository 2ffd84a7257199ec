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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.errors import ConfigError, DataError, extra_error

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


def _to_gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _sorted(dets: list[Detection]) -> list[Detection]:
    """Left to right, then top to bottom: a stable order for the faces of a group photo."""
    return sorted(dets, key=lambda d: (d.box[0], d.box[1]))


def _clip(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box | None:
    box = (max(0, round(x0)), max(0, round(y0)), min(width, round(x1)), min(height, round(y1)))
    return box if box[2] > box[0] and box[3] > box[1] else None


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

        gray = _to_gray(rgb)
        h, w = gray.shape[:2]
        scale = min(1.0, 24.0 / self.min_face)
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        found = self.cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(24, 24)
        )
        out = []
        for x, y, bw, bh in np.asarray(found, dtype=np.float64).reshape(-1, 4) / scale:
            box = _clip(x, y, x + bw, y + bh, w, h)
            if box:
                out.append(Detection(box))
        return _sorted(out)


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
            box = _clip(r.xmin * w, r.ymin * h, (r.xmin + r.width) * w, (r.ymin + r.height) * h, w, h)
            if box:
                out.append(Detection(box, float(det.score[0]), _blazeface_points(det, w, h)))
        return _sorted(out)

    def close(self) -> None:
        self._fd.close()


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
            box = _clip(x, y, x + bw, y + bh, w, h)
            if box:
                out.append(Detection(box, float(row[14])))
        return _sorted(out)


class FaceFollower:
    """Face search for video: the whole frame every ``redetect_every`` frames (and whenever no
    face is being followed), in between only a window around each face of the previous frame.

    A face moves little between frames, so searching a window twice its size costs a fraction
    of a full-frame search (Haar: ~2 ms instead of ~30 ms at 640x480). The price: a face that
    enters the picture is found at the next full search, at most ``redetect_every - 1`` frames
    late. ``redetect_every=1`` searches every frame whole. Works with any detector callable.
    """

    def __init__(
        self, detector: Callable[[np.ndarray], list[Detection]], redetect_every: int = 10, window: float = 1.0
    ):
        if redetect_every < 1 or window < 0:
            raise ConfigError(f"redetect_every must be >= 1 and window >= 0, got {redetect_every}, {window}")
        self.detector, self.redetect_every, self.window = detector, redetect_every, window
        self.boxes: list[Box] = []
        self.frames = 0

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        if self.frames % self.redetect_every == 0 or not self.boxes:
            found = self.detector(rgb)
        else:
            found = []
            for box in self.boxes:
                x0, y0, x1, y1 = expand_box(box, self.window, w, h, square=False)
                found += [d.shifted(x0, y0) for d in self.detector(np.ascontiguousarray(rgb[y0:y1, x0:x1]))]
            found = _sorted(_dedupe(found))
        self.frames += 1
        self.boxes = [d.box for d in found]
        return found


def _dedupe(dets: list[Detection], overlap: float = 0.5) -> list[Detection]:
    """Drop a detection mostly covered by an earlier one (windows of close faces overlap)."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        x0, y0, x1, y1 = d.box
        area = (x1 - x0) * (y1 - y0)
        if all(
            max(0, min(x1, k.box[2]) - max(x0, k.box[0])) * max(0, min(y1, k.box[3]) - max(y0, k.box[1]))
            < overlap * area
            for k in kept
        ):
            kept.append(d)
    return kept


def _centerface(**options: Any) -> Callable[[np.ndarray], list[Detection]]:
    from .centerface import CenterFaceDetector  # imports this module: loaded on first use

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
    clipped = _clip(cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, width, height)
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
