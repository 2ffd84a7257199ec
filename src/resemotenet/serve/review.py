"""The review queue: face crops the model was unsure of, waiting for a person's label.

Exists only when review is switched on (``--review DIR``); it is then the one place the service
writes face crops. Layout, so that the labelled part is a ``folder:`` dataset as it stands::

    DIR/pending/<id>.jpg + <id>.json         waiting (at most ``max_pending``; then new ones are refused)
    DIR/labelled/train/<emotion>/<id>.jpg    a person's label: fine-tune with --data folder:DIR/labelled
    DIR/labelled/test/<emotion>/<id>.jpg     every 5th face of each class (the 1st, 6th, ...): held out
    DIR/runs/<name>/best.pt, DIR/models/*    fine-tuned weights the page compares on the held-out faces

The held-out part is fixed when a face is labelled, so no later run trains on it: the trainer
never reads ``test/`` except for its final test, and the page's before / after comparison
(``compare``) scores the served model and each fine-tuned checkpoint on exactly those faces.
"no face" deletes the crop; "skip" sends it to the back of the queue. Ids are random hex,
checked by pattern before they touch a path.

Admission, so that no caller can push a person's real faces out: a full queue refuses new crops
(counted in ``refused``; nothing already waiting is ever evicted), and the code run inside
``review_budget(n)`` (one HTTP request, one live frame) adds at most ``n`` crops. Answers name
folders relative to the review folder, never by their absolute path on the server.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

from ..inference.results import FaceResult
from .errors import NotFound, Unprocessable
from .imaging import encode_jpeg

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
NO_FACE, SKIP = "no_face", "skip"
PARTS = ("train", "test")
HOLD_OUT_EVERY = 5  # the 1st, 6th, 11th, ... face labelled in a class is held out
WEIGHT_GLOBS = ("runs/*/best.pt", "models/*.pt", "models/*.safetensors")
_budget: ContextVar[list[int] | None] = ContextVar("review_budget", default=None)


@contextmanager
def review_budget(n: int) -> Iterator[None]:
    """The code run inside (one request's handling, in its own asyncio task or thread) adds at most
    ``n`` crops to any review queue; the rest are refused and counted as ``request_cap``."""
    token = _budget.set([n])
    try:
        yield
    finally:
        _budget.reset(token)


class ReviewStore:
    def __init__(self, directory: str | Path, labels: tuple[str, ...], max_pending: int = 2000):
        self.root, self.labels, self.max_pending = Path(directory), tuple(labels), max_pending
        self.pending_dir, self.labelled_dir = self.root / "pending", self.root / "labelled"
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            (self.labelled_dir / part).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.refused: Counter[str] = Counter()  # crops not queued: 'full', 'request_cap'
        self._migrate()

    def _migrate(self) -> None:
        """Class folders straight under ``labelled/`` (an older layout) move into train/ and test/."""
        for d in sorted(self.labelled_dir.iterdir()):
            if d.is_dir() and d.name in self.labels:
                for f in sorted(d.glob("*.jpg")):
                    dst = self.labelled_dir / self._next_part(d.name) / d.name
                    dst.mkdir(exist_ok=True)
                    f.replace(dst / f.name)
                if not any(d.iterdir()):
                    d.rmdir()

    def _class_count(self, label: str) -> int:
        return sum(1 for part in PARTS for _ in (self.labelled_dir / part / label).glob("*.jpg"))

    def _next_part(self, label: str) -> str:
        return "test" if self._class_count(label) % HOLD_OUT_EVERY == 0 else "train"

    def _path(self, item_id: str, suffix: str) -> Path:
        if not ID_PATTERN.match(item_id):
            raise NotFound(f"no review item {item_id!r}")
        return self.pending_dir / f"{item_id}{suffix}"

    def add(
        self, crop: np.ndarray, face: FaceResult, source: str, reason: str = "uncertain", group: str | None = None
    ) -> str | None:
        """Queue one crop with the model's view of it: its id, or None when refused (the queue is
        full, or the request's ``review_budget`` is spent; counted in ``refused``)."""
        budget = _budget.get()
        if budget is not None and budget[0] <= 0:
            with self._lock:
                self.refused["request_cap"] += 1
            return None
        item_id = uuid.uuid4().hex
        ranked = sorted(face.probabilities.items(), key=lambda kv: -kv[1])
        meta = {
            "id": item_id,
            "source": source,
            "time": time.time(),
            "reason": reason,
            "group": group or source,
            "track": face.track,
            "score": face.score,
            "top2": [[n, round(p, 4)] for n, p in ranked[:2]],
            "probabilities": {k: round(v, 4) for k, v in face.probabilities.items()},
        }
        with self._lock:
            if self.pending_count() >= self.max_pending:
                self.refused["full"] += 1
                return None
            self._path(item_id, ".jpg").write_bytes(encode_jpeg(crop))
            self._path(item_id, ".json").write_text(json.dumps(meta))
        if budget is not None:
            budget[0] -= 1
        return item_id

    def _pending_files(self) -> list[Path]:
        """Queue order: oldest first (modification time; 'skip' touches a file to the back)."""
        files = [p for p in self.pending_dir.glob("*.json") if ID_PATTERN.match(p.stem)]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def pending_count(self) -> int:
        return sum(1 for p in self.pending_dir.glob("*.json") if ID_PATTERN.match(p.stem))

    def pending(self, limit: int = 50) -> list[dict[str, Any]]:
        out = []
        for p in self._pending_files()[:limit]:
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, ValueError):
                continue  # labelled or dropped meanwhile
        return out

    def image(self, item_id: str) -> bytes:
        path = self._path(item_id, ".jpg")
        if not path.is_file():
            raise NotFound(f"no review item {item_id!r}")
        return path.read_bytes()

    def label(self, item_id: str, label: str) -> dict[str, Any]:
        """Assign a label (a class name, 'no_face' or 'skip') to a pending crop."""
        if label not in self.labels and label not in (NO_FACE, SKIP):
            raise Unprocessable(f"label {label!r} is not a class; valid: {', '.join(self.labels)}, {NO_FACE}, {SKIP}")
        jpg, meta = self._path(item_id, ".jpg"), self._path(item_id, ".json")
        with self._lock:
            if not meta.is_file():
                raise NotFound(f"no pending review item {item_id!r}")
            if label == SKIP:
                now = time.time_ns()
                os.utime(meta, ns=(now, now))
                return {"id": item_id, "label": SKIP}
            out = {"id": item_id, "label": label}
            if label == NO_FACE:
                jpg.unlink(missing_ok=True)
            else:
                out["part"] = part = self._next_part(label)
                dst = self.labelled_dir / part / label
                dst.mkdir(exist_ok=True)
                jpg.replace(dst / jpg.name)
            meta.unlink(missing_ok=True)
        return out

    def _labelled(self, part: str) -> list[tuple[str, Path]]:
        """(class, crop) of one part, in a stable order."""
        out = []
        for label in self.labels:
            out.extend((label, f) for f in sorted((self.labelled_dir / part / label).glob("*.jpg")))
        return out

    def counts(self) -> dict[str, Any]:
        labelled = {label: n for label in self.labels if (n := self._class_count(label))}
        return {
            "pending": self.pending_count(),
            "labelled": labelled,
            "held_out": len(self._labelled("test")),
            "refused": dict(self.refused),
            "max_pending": self.max_pending,
            "folder": "labelled",  # relative to the review folder: no server path in an answer
            "runs": "runs",
        }

    def held_out(self) -> list[tuple[str, Path]]:
        return self._labelled("test")

    def weights(self) -> list[Path]:
        """Fine-tuned checkpoints inside the review folder (never a path taken from a request)."""
        return sorted({p for pattern in WEIGHT_GLOBS for p in self.root.glob(pattern) if p.is_file()})

    def export_zip(self) -> bytes:
        """The labelled crops as a zip laid out as a ``folder:`` dataset (``train|test/<emotion>/<id>.jpg``)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for part in PARTS:
                for label, f in self._labelled(part):
                    zf.write(f, f"{part}/{label}/{f.name}")
        return buf.getvalue()
