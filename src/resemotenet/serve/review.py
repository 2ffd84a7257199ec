"""The review queue: face crops the review policy picked, waiting for a person's label.

Exists only when review is switched on (``--review DIR``); it is then the one place the service
writes face crops. Everything lives in that folder::

    DIR/review.sqlite3        every item: source, track, group, capture time, why it was queued
                              ('uncertain' or 'audit'), the model's score, top-2 and probabilities,
                              its state (pending, labelled, no_face), label and held-out part
    DIR/crops/<id>.jpg        each item's crop, written before its row commits (``store``)
    DIR/labelled/             the labelled faces as a ``folder:`` dataset with ``groups.csv``, kept
                              as the database says (``labelled``): fine-tune with --data folder:DIR/labelled
    DIR/runs/<name>/best.pt, DIR/models/*    fine-tuned weights the page compares on held-out faces

Held out by GROUP, never face by face: a group (one tracked face, or one source's capture day) gets
its part when its first face is labelled, the 1st, 6th, 11th ... group is held out (``test``),
and every later face of that group follows it. A face that trained a model can therefore never
stand for a held-out one of the same person. "no face" and "skip" are answers too; ``undo`` puts
an item's last label back, the item first in the queue. Ids are random hex, checked by pattern
before they reach a query or a path. A folder of an earlier version (``pending/``, ``labelled/``)
is moved into the database on first start.

Admission, so that no caller can push a person's real faces out: a full queue refuses new crops
(counted in ``refused``; nothing already waiting is ever evicted), and the code run inside
``review_budget(n)`` (one HTTP request, one live frame) adds at most ``n`` crops. Answers name
folders relative to the review folder, never by their absolute path on the server.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..inference.results import FaceResult
from ..utils.errors import ConfigError
from .errors import Conflict, NotFound, Unavailable, Unprocessable
from .imaging import encode_jpeg
from .labelled import Face, LiveFolder, write_folder, zip_bytes
from .store import PARTS, Database

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
NO_FACE, SKIP = "no_face", "skip"
REASONS = ("uncertain", "audit")
WEIGHT_GLOBS = ("runs/*/best.pt", "models/*.pt", "models/*.safetensors")
_budget: ContextVar[list[int] | None] = ContextVar("review_budget", default=None)


class LabelledFace(NamedTuple):
    label: str
    path: Path
    group: str
    reason: str


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
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.refused: Counter[str] = Counter()  # crops not queued: 'full', 'request_cap', 'write_error'
        self.db = Database(self.root)
        try:
            self.migrated = self.db.migrate(self.labels, lambda s: bool(ID_PATTERN.match(s)))
            self.swept = self.db.sweep()  # what the last run left half-done: counted in counts()
        except BaseException:
            self.db.close()
            raise
        self.view = LiveFolder(self.root / "labelled")  # derived from the database: rebuilt on start
        self._refresh_view()

    def close(self) -> None:
        self.db.close()

    def _check_id(self, item_id: str) -> None:
        if not ID_PATTERN.match(item_id):
            raise NotFound(f"no review item {item_id!r}")

    def add(
        self,
        crop: np.ndarray,
        face: FaceResult,
        source: str,
        reason: str = "uncertain",
        group: str | None = None,
        captured: float | None = None,
    ) -> str | None:
        """Queue one crop with the model's view of it: its id, or None when refused (the queue is
        full, the request's ``review_budget`` is spent, or the disk refused the write; counted in
        ``refused``). ``captured``: when the face was seen (default now)."""
        budget = _budget.get()
        if budget is not None and budget[0] <= 0:
            with self._lock:
                self.refused["request_cap"] += 1
            return None
        ranked = sorted(face.probabilities.items(), key=lambda kv: -kv[1])
        row = {
            "id": uuid.uuid4().hex,
            "source": source,
            "track": face.track,
            "grp": group or source,
            "captured": time.time() if captured is None else float(captured),
            "reason": reason if reason in REASONS else "uncertain",
            "score": float(face.score),
            "top2": json.dumps([[n, round(p, 4)] for n, p in ranked[:2]]),
            "probabilities": json.dumps({k: round(v, 4) for k, v in face.probabilities.items()}),
        }
        data = encode_jpeg(crop)
        with self._lock:  # the check and the insert as one step: the queue never exceeds its bound
            if self.pending_count() >= self.max_pending:
                self.refused["full"] += 1
                return None
            try:
                self.db.insert(row, data)
            except (OSError, Unavailable):  # a full disk: the face is not queued, the request goes on
                self.refused["write_error"] += 1
                return None
        if budget is not None:
            budget[0] -= 1
        return row["id"]

    def pending_count(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM items WHERE state = 'pending' AND crop_missing = 0"))

    def pending(self, limit: int = 50) -> list[dict[str, Any]]:
        """The queue, first to label first."""
        rows = self.db.query(
            "SELECT * FROM items WHERE state = 'pending' AND crop_missing = 0 ORDER BY seq LIMIT ?", (limit,)
        )
        return [_item(r) for r in rows]

    def item(self, item_id: str) -> dict[str, Any]:
        """One item in any state (its label and part once labelled)."""
        self._check_id(item_id)
        rows = self.db.query("SELECT * FROM items WHERE id = ?", (item_id,))
        if not rows:
            raise NotFound(f"no review item {item_id!r}")
        return _item(rows[0])

    def image(self, item_id: str) -> bytes:
        self._check_id(item_id)
        row = self.db.query("SELECT crop_missing FROM items WHERE id = ?", (item_id,))
        if not row or row[0][0]:
            raise NotFound(f"no review item {item_id!r}")
        try:
            return self.db.crop_path(item_id).read_bytes()
        except OSError:  # removed behind the service's back: the item leaves the queue
            self.db.mark_missing(item_id)
            raise NotFound(f"the crop of review item {item_id!r} is gone; the item left the queue") from None

    def label(self, item_id: str, label: str) -> dict[str, Any]:
        """Answer a pending item: a class name (the item's group decides its part), 'no_face', or
        'skip' (to the back of the queue). An unknown item is NotFound (404); one already answered
        is a Conflict (409) that names its label: ``undo`` first to change it."""
        if label not in self.labels and label not in (NO_FACE, SKIP):
            raise Unprocessable(f"label {label!r} is not a class; valid: {', '.join(self.labels)}, {NO_FACE}, {SKIP}")
        self._check_id(item_id)
        with self.db.write() as c:
            row = c.execute("SELECT state, label, grp, crop_missing FROM items WHERE id = ?", (item_id,)).fetchone()
            if row is None or row["crop_missing"]:
                raise NotFound(f"no review item {item_id!r}" + (" (its crop is gone)" if row else ""))
            if row["state"] != "pending":
                was = row["label"] if row["state"] == "labelled" else NO_FACE
                raise Conflict(f"review item {item_id} is already labelled {was!r}; undo it first to change it")
            if label == SKIP:
                c.execute("UPDATE items SET seq = (SELECT MAX(seq) + 1 FROM items) WHERE id = ?", (item_id,))
                return {"id": item_id, "label": SKIP}
            out: dict[str, Any] = {"id": item_id, "label": label, "group": row["grp"]}
            if label == NO_FACE:
                c.execute(
                    "UPDATE items SET state = 'no_face', labelled_at = ? WHERE id = ?",
                    (time.time(), item_id),
                )
                return out
            out["part"] = part = Database.group_part(c, row["grp"])
            c.execute(
                "UPDATE items SET state = 'labelled', label = ?, labelled_at = ?, part = ? WHERE id = ?",
                (label, time.time(), part, item_id),
            )
        self.view.put((f"{part}/{label}/{item_id}.jpg", self.db.crop_path(item_id), row["grp"]), self._rows())
        return out

    def undo(self, item_id: str) -> dict[str, Any]:
        """Put an item's last answer (a class or 'no_face') back: pending again, first in the queue.
        Its group keeps its part, so a relabel cannot move a held-out face into training."""
        self._check_id(item_id)
        with self.db.write() as c:
            row = c.execute("SELECT state, label, part FROM items WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                raise NotFound(f"no review item {item_id!r}")
            if row["state"] == "pending":
                raise Conflict(f"review item {item_id} has no label to undo")
            c.execute(
                "UPDATE items SET state = 'pending', label = NULL, labelled_at = NULL, part = NULL, "
                "seq = (SELECT MIN(seq) - 1 FROM items) WHERE id = ?",
                (item_id,),
            )
        if row["state"] == "labelled":
            self.view.drop(f"{row['part']}/{row['label']}/{item_id}.jpg", self._rows())
        return {"id": item_id, "undone": row["label"] if row["state"] == "labelled" else NO_FACE, "state": "pending"}

    def labelled(self, part: str) -> list[LabelledFace]:
        """(label, crop path, group, reason) of one part's faces, class by class in a stable order."""
        if part not in PARTS:
            raise ConfigError(f"unknown part {part!r}; valid: {', '.join(PARTS)}")
        rows = self.db.query(
            "SELECT id, label, grp, reason FROM items WHERE state = 'labelled' AND crop_missing = 0 AND part = ? "
            "ORDER BY id",
            (part,),
        )
        order = {name: i for i, name in enumerate(self.labels)}
        faces = [LabelledFace(r["label"], self.db.crop_path(r["id"]), r["grp"], r["reason"]) for r in rows]
        return sorted(faces, key=lambda f: (order.get(f.label, len(order)), f.label))

    def held_out(self) -> list[tuple[str, Path]]:
        return [(f.label, f.path) for f in self.labelled("test")]

    def counts(self) -> dict[str, Any]:
        per_class = {label: {"train": 0, "test": 0} for label in self.labels}
        by_reason: Counter[str] = Counter()
        rows = self.db.query(
            "SELECT label, part, reason, COUNT(*) FROM items WHERE state = 'labelled' AND crop_missing = 0 "
            "GROUP BY label, part, reason"
        )
        for label, part, reason, n in rows:
            per_class.setdefault(label, {"train": 0, "test": 0})[part] += n
            by_reason[reason] += n
        states = dict(self.db.query("SELECT state, COUNT(*) FROM items GROUP BY state"))
        groups = dict(self.db.query("SELECT part, COUNT(*) FROM groups GROUP BY part"))
        return {
            "pending": self.pending_count(),
            "labelled": {k: v["train"] + v["test"] for k, v in per_class.items() if v["train"] + v["test"]},
            "per_class": per_class,
            "held_out": sum(v["test"] for v in per_class.values()),
            "groups": {p: groups.get(p, 0) for p in PARTS},
            "by_reason": {r: by_reason[r] for r in REASONS},
            "no_face": states.get("no_face", 0),
            "missing_crops": int(self.db.scalar("SELECT COUNT(*) FROM items WHERE crop_missing = 1")),
            "swept": dict(self.swept),
            "refused": dict(self.refused),
            "max_pending": self.max_pending,
            "folder": "labelled",  # relative to the review folder: no server path in an answer
            "runs": "runs",
        }

    def weights(self) -> list[Path]:
        """Fine-tuned checkpoints inside the review folder (never a path taken from a request)."""
        return sorted({p for pattern in WEIGHT_GLOBS for p in self.root.glob(pattern) if p.is_file()})

    # ---- the labelled faces as a folder: dataset (``labelled``) ----------------------------------

    def _dataset(self) -> list[Face]:
        """(name in the dataset, crop, group) of every labelled face whose crop is there."""
        out = []
        for part in PARTS:
            for face in self.labelled(part):
                if face.path.is_file():
                    out.append((f"{part}/{face.label}/{face.path.name}", face.path, face.group))
                else:
                    self.db.mark_missing(face.path.stem)
        return out

    def _rows(self) -> list[tuple[str, str]]:
        """groups.csv's rows for every labelled face."""
        rows = self.db.query(
            "SELECT id, label, part, grp FROM items WHERE state = 'labelled' AND crop_missing = 0 ORDER BY part, id"
        )
        return [(f"{r['part']}/{r['label']}/{r['id']}.jpg", r["grp"]) for r in rows]

    def _refresh_view(self) -> None:
        try:
            self.view.rebuild(self._dataset())
        except (ConfigError, Unavailable):
            pass  # a folder that is not the store's own, or a full disk: left alone (view.ok False)

    def export_zip(self) -> bytes:
        """The labelled crops as a zip laid out as a ``folder:`` dataset: ``train|test/<emotion>/<id>.jpg``
        and ``groups.csv`` (``file,group``), so every split made from it keeps a group together."""
        return zip_bytes(self._dataset())

    def materialize_folder(self, dst: str | Path | None = None) -> dict[str, Any]:
        """Write the labelled faces to ``dst`` as a ``folder:`` dataset with ``groups.csv`` (crops hard
        linked where the disk allows), swapped in whole. Default: ``DIR/labelled``, which the store
        also keeps up to date after each label. ``dst`` may be missing, empty, or a folder this method
        wrote before; anything else is refused (ConfigError)."""
        dst = self.view.folder if dst is None else Path(dst)
        if dst.resolve() == self.view.folder.resolve():
            return self.view.rebuild(self._dataset())
        return write_folder(dst, self._dataset())


def _item(r: Any) -> dict[str, Any]:
    """A row as the API shows it (``time``: the capture time)."""
    return {
        "id": r["id"],
        "source": r["source"],
        "time": r["captured"],
        "reason": r["reason"],
        "group": r["grp"],
        "track": r["track"],
        "score": r["score"],
        "top2": json.loads(r["top2"]) if r["top2"] else None,
        "probabilities": json.loads(r["probabilities"]) if r["probabilities"] else None,
        "state": r["state"],
        "label": r["label"],
        "part": r["part"],
    }
