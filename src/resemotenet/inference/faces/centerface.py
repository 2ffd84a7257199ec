"""CenterFace (Xu et al., arXiv 1911.03599): faces found as points, with 5 landmarks each.

The network (MobileNetV2 + FPN, 7.3 MB, MIT licence; ``weights/CENTERFACE-LICENSE.txt``) ships
inside the package and runs on onnxruntime when it is installed, otherwise on OpenCV's
``cv2.dnn`` (a core dependency). It sees an RGB image, values 0..255, whose sides are
multiples of 32, and answers at stride 4:

- ``heatmap`` (1, 1, h, w): probability that a face centre falls in the cell;
- ``scale`` (1, 2, h, w): log(face height / 4), log(face width / 4);
- ``offset`` (1, 2, h, w): sub-cell (y, x) shift of the centre;
- ``landmarks`` (1, 10, h, w): (y, x) of left eye, right eye, nose, left and right mouth
  corners, as fractions of the box from its top-left corner.

``decode`` turns these into boxes; nothing about an image's size is kept between calls (each
frame is resized and padded on its own, and its scale factors travel with it).
"""

from __future__ import annotations

from collections import OrderedDict
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ...utils.errors import CheckpointError, ConfigError, DataError, extra_error
from .base import Detection, clip_box, sort_faces

STRIDE = 4  # output cells per input pixel side
MULTIPLE = 32  # the network's input sides must be multiples of its total stride
OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks in the ONNX graph
LOG_SCALE_LIMIT = 20.0  # a log box side is clipped to +-this before exp, so a wild output stays finite
BACKENDS = ("auto", "onnxruntime", "opencv")


def weights_path() -> Path:
    """The shipped ONNX file (``tools/fetch_centerface.sh`` rebuilds it)."""
    return Path(str(resources.files("resemotenet") / "weights" / "centerface.onnx"))


def decode(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    min_score: float = 0.5,
    nms_threshold: float = 0.3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (N, 4) as x0, y0, x1, y1, scores (N,) and landmarks (N, 5, 2) as (x, y), in pixels of
    the network input, best first, after non-maximum suppression (``cv2.dnn.NMSBoxes``)."""
    import cv2

    hm = np.asarray(heatmap, np.float32)[0, 0]
    ys, xs = np.nonzero(hm > min_score)
    if ys.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    scores = hm[ys, xs]
    log_hw = np.clip(np.asarray(scale, np.float32)[0][:, ys, xs], -LOG_SCALE_LIMIT, LOG_SCALE_LIMIT)
    bh, bw = np.exp(log_hw) * STRIDE
    off = np.asarray(offset, np.float32)[0][:, ys, xs]
    cy, cx = (ys + off[0] + 0.5) * STRIDE, (xs + off[1] + 0.5) * STRIDE
    x0, y0 = cx - bw / 2, cy - bh / 2
    boxes = np.stack([x0, y0, x0 + bw, y0 + bh], axis=1)
    lm = np.asarray(landmarks, np.float32)[0][:, ys, xs].T.reshape(-1, 5, 2)  # (N, 5, (y, x))
    points = np.stack([x0[:, None] + lm[..., 1] * bw[:, None], y0[:, None] + lm[..., 0] * bh[:, None]], axis=-1)
    xywh = np.stack([x0, y0, bw, bh], axis=1).astype(np.float64)
    keep = np.asarray(
        cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(float).tolist(), min_score, nms_threshold), dtype=np.int64
    ).reshape(-1)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    return boxes[keep], scores[keep], points[keep]


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) from grayscale, (H, W, 1), RGB or RGBA, uint8 or 16-bit."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or 0 in arr.shape:
        raise DataError(f"expected an image shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)  # the high byte: 16-bit PNG and TIFF frames
    elif arr.dtype != np.uint8:
        raise DataError(f"expected a uint8 or uint16 image, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr[..., :3])


class CenterFaceDetector:
    """Every face in a frame with its 5 landmarks (``Detection.landmarks``).

    ``max_side``: the frame is shrunk (never enlarged) until its longer side is at most this many
    pixels, then padded to multiples of 32; time grows with the pixel count, and the smallest face
    found is about 10 px at the network's scale (a 20 px face in a 640-wide frame at
    ``max_side=320``). ``min_score``: heatmap threshold. ``backend``: 'auto' (onnxruntime if
    installed, else OpenCV), 'onnxruntime' or 'opencv'. ``threads``: onnxruntime's intra-op threads.
    """

    name = "centerface"

    def __init__(
        self,
        max_side: int = 480,
        min_score: float = 0.3,
        nms_threshold: float = 0.3,
        backend: str = "auto",
        model_path: str | Path | None = None,
        threads: int | None = None,
    ):
        if not isinstance(max_side, int) or max_side < MULTIPLE:
            raise ConfigError(f"centerface: max_side must be an integer >= {MULTIPLE}, got {max_side!r}")
        if not (0.0 < min_score < 1.0 and 0.0 < nms_threshold <= 1.0):
            raise ConfigError("centerface: need 0 < min_score < 1 and 0 < nms_threshold <= 1")
        if backend not in BACKENDS:
            raise ConfigError(f"centerface: unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        self.path = Path(model_path) if model_path else weights_path()
        if not self.path.is_file():
            raise ConfigError(
                f"{self.path}: CenterFace model file not found (reinstall resemotenet, "
                "or rebuild it with tools/fetch_centerface.sh)"
            )
        self.max_side, self.min_score, self.nms_threshold = max_side, min_score, nms_threshold
        self.backend = _pick_backend(backend)
        self._run = _OnnxRuntimeNet(self.path, threads) if self.backend == "onnxruntime" else _OpenCVNet(self.path)

    def blob(self, rgb: np.ndarray) -> tuple[np.ndarray, float, float]:
        """The network input (1, 3, H32, W32) float32 for one frame, and its x and y scale factors."""
        import cv2

        h, w = rgb.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        img = rgb if (nw, nh) == (w, h) else cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        pw, ph = -(-nw // MULTIPLE) * MULTIPLE, -(-nh // MULTIPLE) * MULTIPLE
        out = np.zeros((1, 3, ph, pw), np.float32)  # padding (black) at the right and bottom keeps the scale uniform
        out[0, :, :nh, :nw] = img.transpose(2, 0, 1)
        return out, nw / w, nh / h

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        """The four raw outputs (heatmap, scale, offset, landmarks) for a blob."""
        return self._run(blob)

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        img = as_rgb8(rgb)
        h, w = img.shape[:2]
        blob, sx, sy = self.blob(img)
        boxes, scores, points = decode(*self.forward(blob), self.min_score, self.nms_threshold)
        boxes, points = boxes / [sx, sy, sx, sy], points / [sx, sy]
        out = []
        for (x0, y0, x1, y1), score, pts in zip(boxes, scores, points, strict=True):
            box = clip_box(x0, y0, x1, y1, w, h)
            if box:
                out.append(Detection(box, float(score), tuple((float(x), float(y)) for x, y in pts)))
        return sort_faces(out)


def _pick_backend(backend: str) -> str:
    if backend == "opencv":
        return backend
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        if backend == "onnxruntime":
            raise extra_error("onnxruntime", "export", exc) from exc
        return "opencv"
    return "onnxruntime"


class _OnnxRuntimeNet:
    def __init__(self, path: Path, threads: int | None):
        from ...utils.ort import ort_session

        try:
            self.session = ort_session(path, threads, what="CenterFace model")
        except CheckpointError as exc:
            raise ConfigError(str(exc)) from exc

    def __call__(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.session.run(list(OUTPUTS), {"input.1": blob})


class _OpenCVNet:
    """``cv2.dnn``, one network per input shape: OpenCV 4.14 returns wrong outputs once a network
    has run at another input size (measured: heatmap errors up to 0.99 after a size change), so a
    network is never reused across shapes. A few shapes are kept (video frames share one; the
    windows of ``FaceFollower`` round to a few multiples of 32); building one takes ~25 ms."""

    def __init__(self, path: Path, keep: int = 6):
        self.path, self.keep = path, keep
        self.nets: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._spare: Any = self._read()  # fail now on an unreadable file, not at the first frame

    def _read(self) -> Any:
        import cv2

        try:
            return cv2.dnn.readNetFromONNX(str(self.path))
        except cv2.error as exc:
            reason = str(exc).strip().splitlines()[-1][:160]
            raise ConfigError(f"{self.path}: not a loadable CenterFace model ({reason})") from exc

    def _net(self, shape: tuple[int, ...]) -> Any:
        if shape not in self.nets:
            self.nets[shape] = self._spare if self._spare is not None else self._read()
            self._spare = None
            if len(self.nets) > self.keep:
                self.nets.popitem(last=False)
        self.nets.move_to_end(shape)
        return self.nets[shape]

    def __call__(self, blob: np.ndarray) -> list[np.ndarray]:
        net = self._net(blob.shape)
        net.setInput(blob)
        return list(net.forward(list(OUTPUTS)))
