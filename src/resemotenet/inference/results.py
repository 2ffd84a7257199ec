"""What a prediction run produces, per face and per frame: ``FaceResult`` and ``FrameResult``.

Files are written by ``writers`` (streaming JSONL/CSV), counted by ``summary`` (``RunSummary``)
and drawn by ``drawing`` (annotated copies, only on request). Privacy by default: nothing but
the results file is written; no crops, no frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..labels import UNCERTAIN
from .faces import Box


@dataclass
class FaceResult:
    """One face in one frame. ``probabilities`` are calibrated (softmax of logits / temperature)
    and, in a video, smoothed along the face's track; ``label`` is their argmax, or 'uncertain'
    (with ``top2`` candidates for a human to decide) when ``score`` < min_confidence."""

    source: str
    frame: int
    timestamp: float | None
    box: Box
    label: str
    score: float
    probabilities: dict[str, float]
    track: int | None = None
    top2: list[tuple[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The one face row: JSONL, the HTTP API, the service's jobs and the batch jobs write it."""
        return {
            "source": self.source,
            "frame": self.frame,
            "timestamp": None if self.timestamp is None else round(self.timestamp, 4),
            "box": [int(v) for v in self.box],
            "label": self.label,
            "score": round(self.score, 6),
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "track": self.track,
            "top2": None if self.top2 is None else [[n, round(p, 6)] for n, p in self.top2],
            "uncertain": self.label == UNCERTAIN,
            "status": "face",
        }


def no_face_dict(source: str, frame: int = 0, timestamp: float | None = None) -> dict[str, Any]:
    """The row written for an image (or frame) in which no face was found: the same keys as
    ``FaceResult.to_dict``, all empty, with ``status`` 'no_face'."""
    return {
        "source": source,
        "frame": frame,
        "timestamp": None if timestamp is None else round(timestamp, 4),
        "box": None,
        "label": None,
        "score": None,
        "probabilities": None,
        "track": None,
        "top2": None,
        "uncertain": False,
        "status": "no_face",
    }


FLAT_COLUMNS = ("source", "frame", "timestamp", "x0", "y0", "x1", "y1", "label", "score", "uncertain", "track", "top2")


def flat_columns(labels: tuple[str, ...] | list[str]) -> list[str]:
    """The columns of a flat face row: a column per box corner and per label (``p_<label>``)."""
    return [*FLAT_COLUMNS, *(f"p_{n}" for n in labels), "status"]


def flat_row(d: dict[str, Any], labels: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """One face row (``FaceResult.to_dict`` or ``no_face_dict``) flattened for CSV and Parquet;
    missing values are None. The one flattener: predict's CSV, the service's CSV, the batch jobs."""
    box = d.get("box") or [None] * 4
    probs = d.get("probabilities") or {}
    top2 = d.get("top2")
    flat = {k: d.get(k) for k in ("source", "frame", "timestamp", "label", "score", "uncertain", "track", "status")}
    flat.update(zip(("x0", "y0", "x1", "y1"), box, strict=True))
    flat["top2"] = None if top2 is None else "|".join(f"{n}:{p:.4f}" for n, p in top2)
    flat.update({f"p_{n}": probs.get(n) for n in labels})
    return {k: flat.get(k) for k in flat_columns(labels)}


@dataclass
class FrameResult:
    """The faces of one frame, or the reason the frame (an image of a folder) failed."""

    source: str
    frame: int = 0
    timestamp: float | None = None
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    crops: list[np.ndarray] | None = field(default=None, repr=False)  # what the model saw, face by face


def __getattr__(name: str) -> Any:
    """Names that lived here before the module was split keep working for one release."""
    import importlib

    for module in ("writers", "summary", "drawing"):
        mod = importlib.import_module(f"{__package__}.{module}")
        if hasattr(mod, name):
            return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
