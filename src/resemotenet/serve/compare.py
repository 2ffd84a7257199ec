"""Before / after on the reviewed faces: the served model and every fine-tuned checkpoint in the
review folder (``ReviewStore.weights``), scored on the held-out part of the faces a person
labelled (whole groups, never trained on; ``labelled/test/`` of the dataset the store writes).
Checkpoints load with ``weights_only`` (``models.load_model``); a file that does not load is
reported on its row, not raised. A checkpoint's row is kept until its file (size, mtime) or the
held-out set changes, so the page can ask again freely.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..imaging import read_image
from ..utils.errors import DataError, ResEmoteNetError

_rows: dict[str, tuple[tuple, dict[str, Any]]] = {}  # checkpoint path -> (its stamp, its row)
_lock = threading.Lock()


def _read_crop(path: Path) -> np.ndarray | None:
    try:
        return read_image(path)
    except DataError:  # removed or damaged since it was labelled: left out of the comparison
        return None


def _score(name: str, probs: np.ndarray, labels: list[str], truth: list[str]) -> dict[str, Any]:
    predicted = [labels[i] for i in probs.argmax(1)]
    hits = [p == t for p, t in zip(predicted, truth, strict=True)]
    per_class = {}
    for c in sorted(set(truth), key=truth.index):
        idx = [i for i, t in enumerate(truth) if t == c]
        per_class[c] = {"n": len(idx), "recall": float(np.mean([hits[i] for i in idx]))}
    return {"model": name, "n": len(truth), "accuracy": float(np.mean(hits)), "per_class": per_class}


def compare(service: Any) -> dict[str, Any]:
    """Rows (served model first, then each checkpoint) of accuracy on the held-out reviewed faces."""
    store = service.review
    held = store.held_out()
    readable = [(label, f, c) for label, f in held if (c := _read_crop(f)) is not None]
    out: dict[str, Any] = {"held_out": len(readable), "folder": "labelled/test", "rows": []}  # in the review folder
    if not readable:
        out["note"] = "no held-out faces yet: the 1st, 6th, 11th ... group to get a label is held out, all its faces"
        return out
    truth, crops = [r[0] for r in readable], [r[2] for r in readable]
    key_faces = tuple(str(r[1]) for r in readable)
    served = service.predictor
    out["rows"].append(_score(f"served: {service.model_name}", served.classify(crops), list(served.labels), truth))
    for path in store.weights():
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns, key_faces)
        with _lock:
            kept = _rows.get(str(path))
        if kept is None or kept[0] != stamp:
            kept = (stamp, _checkpoint_row(path, store.root, crops, truth))
            with _lock:
                _rows[str(path)] = kept
        out["rows"].append(kept[1])
    return out


def _checkpoint_row(path: Path, root: Path, crops: list[np.ndarray], truth: list[str]) -> dict[str, Any]:
    from ..inference.predictor import Predictor

    name = str(path.relative_to(root))
    try:
        predictor = Predictor(str(path), detector=lambda rgb: [])  # crops only: no detector is needed
        return _score(name, predictor.classify(crops), list(predictor.labels), truth)
    except ResEmoteNetError as exc:
        reason = str(exc).splitlines()[0].replace(str(path), name).replace(str(root), "<review folder>")
        return {"model": name, "error": reason[:300]}  # names relative to the review folder, as in every answer
