"""The page's on-device mode: what a browser needs to analyse its own camera without sending a
frame anywhere. The service hands over two ONNX files (the CenterFace detector it ships, and the
served emotion model converted to ONNX once, on first request, and kept in memory) and the
numbers that make the page's pipeline (``static/ondevice.js``, on ONNX Runtime Web) the
Predictor's: detector input size and thresholds, the model card's framing for that detector,
preprocessing, temperature, the uncertainty threshold and the tracker's smoothing.
"""

from __future__ import annotations

import inspect
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..utils.errors import MissingExtraError
from .errors import Unavailable

DETECTOR = "centerface"  # the one detector with an ONNX file that runs in a browser as shipped
MODEL_URL = "/v1/on-device/model.onnx"
DETECTOR_URL = "/v1/on-device/detector.onnx"


def detector_info() -> dict[str, Any]:
    """CenterFace's decoding constants and the defaults ``CenterFaceDetector`` runs with."""
    from ..inference.faces import centerface

    return {
        "name": DETECTOR,
        "url": DETECTOR_URL,
        "outputs": list(centerface.OUTPUTS),
        "stride": centerface.STRIDE,
        "multiple": centerface.MULTIPLE,
        "log_scale_limit": centerface.LOG_SCALE_LIMIT,
        **_defaults(centerface.CenterFaceDetector, "max_side", "min_score", "nms_threshold"),
    }


def _defaults(fn: Any, *names: str) -> dict[str, Any]:
    params = inspect.signature(fn).parameters
    return {k: params[k].default for k in names}


def detector_path() -> Path:
    from ..inference.faces.centerface import weights_path

    return weights_path()


@lru_cache(maxsize=2)
def _exported(source: str, stamp: tuple[int, int] | None) -> bytes:
    """The ONNX bytes of a shipped model name or checkpoint path (``stamp``: the file's size and
    mtime, so a replaced checkpoint is exported again). The parity check runs on synthetic faces."""
    from ..export.onnx import export_onnx
    from ..imaging import synthetic_faces

    with tempfile.TemporaryDirectory(prefix="resemotenet-ondevice-") as tmp:
        out = Path(tmp) / "model.onnx"
        export_onnx(source, out, check_images=synthetic_faces(32), force=True)
        return out.read_bytes()


class OnDevice:
    """The on-device description and files for one service."""

    def __init__(self, source: str, predictor: Any):
        self.source, self.predictor = source, predictor
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """Every number the page's pipeline uses (``static/ondevice.js``, ``static/geometry.js``),
        taken from the code the Predictor runs: the page keeps no constant of its own."""
        from ..inference.faces.base import align_face
        from ..inference.tracking import IoUTracker

        p, card = self.predictor, self.predictor.card
        framing = card.framing
        return {
            "model": {"url": MODEL_URL, "name": card.name},
            "detector": detector_info(),
            "labels": list(p.labels),
            "preprocess": {**card.preprocess.to_dict(), "luma": list(card.preprocess.LUMA)},
            "framing": {
                "margin": framing.margin_for(DETECTOR),
                "square": framing.square,
                "shift_y": framing.shift_y,
                "align": framing.align,
                **_defaults(align_face, "min_angle"),
            },
            "temperature": p.temperature,
            "min_confidence": p.min_confidence,
            "smoothing": p.smoothing,
            "tracker": _defaults(IoUTracker, "iou_threshold", "max_age"),
        }

    def model_bytes(self) -> bytes:
        """The served model as ONNX: an .onnx model file as it is, a checkpoint exported once."""
        src = self.source
        if src.endswith(".onnx"):
            return Path(src).read_bytes()
        path = Path(src)
        stamp = (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else None
        with self._lock:  # one export at a time; later requests get the cached bytes
            try:
                return _exported(src, stamp)
            except MissingExtraError as exc:
                raise Unavailable(f"on-device mode needs the ONNX exporter: {exc}") from exc
