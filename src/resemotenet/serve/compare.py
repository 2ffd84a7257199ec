"""Before / after on the reviewed faces: the served model and every fine-tuned checkpoint in the
review folder (``ReviewStore.weights``), scored on the held-out part of the faces a person
labelled (``labelled/test/``, never trained on). Checkpoints load with ``weights_only``
(``models.load_model``); a file that does not load is reported on its row, not raised.
Results are cached per (file, size, mtime) and held-out set, so the page can ask again freely.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.errors import ResEmoteNetError

_cache: dict[tuple, dict[str, Any]] = {}
_lock = threading.Lock()


def _read_crops(files: list[Path]) -> list[np.ndarray]:
    import cv2

    crops = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        crops.append(None if img is None else np.ascontiguousarray(img[..., ::-1]))
    return crops


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
    readable = [(label, f, c) for (label, f), c in zip(held, _read_crops([f for _, f in held]), strict=True)]
    readable = [(label, f, c) for label, f, c in readable if c is not None]
    out: dict[str, Any] = {"held_out": len(readable), "folder": str(store.labelled_dir / "test"), "rows": []}
    if not readable:
        out["note"] = "no held-out faces yet: the 1st, 6th, 11th ... face labelled in each class is held out"
        return out
    truth, crops = [r[0] for r in readable], [r[2] for r in readable]
    key_faces = tuple(str(r[1]) for r in readable)
    served = service.predictor
    out["rows"].append(_score(f"served: {service.model_name}", served.classify(crops), list(served.labels), truth))
    for path in store.weights():
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, key_faces)
        with _lock:
            row = _cache.get(key)
        if row is None:
            row = _checkpoint_row(path, store.root, crops, truth)
            with _lock:
                _cache[key] = row
        out["rows"].append(row)
    return out


def _checkpoint_row(path: Path, root: Path, crops: list[np.ndarray], truth: list[str]) -> dict[str, Any]:
    from ..inference.predictor import Predictor

    name = str(path.relative_to(root))
    try:
        predictor = Predictor(str(path), detector=lambda rgb: [])  # crops only: no detector is needed
        return _score(name, predictor.classify(crops), list(predictor.labels), truth)
    except ResEmoteNetError as exc:
        return {"model": name, "error": str(exc).splitlines()[0][:300]}
