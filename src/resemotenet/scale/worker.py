"""What runs inside each Ray actor: the Predictor, loaded once, applied to work items.

``ItemWorker`` is a callable class for ``Dataset.map_batches``; it imports nothing from Ray, so
it runs (and is tested) in-process just as well. Every item comes back as one row of the
batch: its key, its result rows as JSON, and an error when the whole item failed (the driver
then writes no part, so a rerun tries it again). A bad image inside a group is not an item
failure: it is listed in the item's ``errors`` and the group goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..inference.sources import Frame, Source
from ..labels import UNCERTAIN
from ..utils.errors import DataError
from .items import WorkItem, face_row, no_face_row


class FrameRange(Source):
    """Frames [start, stop) of a video file; ``stride`` counts from frame 0 of the file, so a
    video split into ranges analyses the same frames as the whole video read at once."""

    kind = "video"

    def __init__(self, path: str, start: int = 0, stop: int | None = None, stride: int = 1):
        import cv2

        super().__init__(path)
        self.start, self.stop, self.stride = start, stop, stride
        self.cap = cv2.VideoCapture(path)
        if not self.cap.isOpened():
            raise DataError(f"{path}: cannot open as a video (unknown format, damaged, or missing codec)")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else None

    def _seek(self) -> int:
        """Position at ``start``; decode forward from 0 where the container cannot seek exactly."""
        import cv2

        if (
            self.start
            and self.cap.set(cv2.CAP_PROP_POS_FRAMES, self.start)
            and int(self.cap.get(cv2.CAP_PROP_POS_FRAMES)) == self.start
        ):
            return self.start
        self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        for _ in range(self.start):
            if not self.cap.grab():
                break
        return self.start

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        index, read = self._seek(), 0
        try:
            while self.stop is None or index < self.stop:
                if index % self.stride:
                    if not self.cap.grab():
                        break
                else:
                    ok, bgr = self.cap.read()
                    if not ok or bgr is None:
                        break
                    yield Frame(
                        self.name, index, index / self.fps if self.fps else None, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    )
                index, read = index + 1, read + 1
        finally:
            self.cap.release()
        if read == 0 and self.start == 0:
            raise DataError(f"{self.name}: no frame could be decoded")
        if self.stop is not None and index < self.stop:
            self.notes.append(
                f"{self.name}: video ended at frame {index}; its header declares more (truncated or damaged file)"
            )


class ItemWorker:
    """Loads the Predictor once per actor; ``__call__`` runs a batch of work items."""

    def __init__(
        self,
        model: str = "default",
        detector: str = "centerface",
        min_confidence: float | None = None,
        stride: int = 1,
        device: str = "cpu",
        threads: int | None = None,
    ):
        import torch

        from ..inference.predictor import Predictor

        if threads:
            torch.set_num_threads(threads)
        self.predictor = Predictor(model, detector=detector, min_confidence=min_confidence, device=device)
        self.stride = stride

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import json

        keys, parts, errors = [], [], []
        for spec in batch["item"]:
            item = WorkItem.from_json(str(spec))
            keys.append(item.key)
            try:
                parts.append(json.dumps(self.run(item)))
                errors.append("")
            except Exception as exc:  # one failed item must not end the job; the driver reports it
                parts.append("")
                errors.append(f"{type(exc).__name__}: {exc}" if not isinstance(exc, DataError) else str(exc))
        return {"key": np.array(keys), "part": np.array(parts), "error": np.array(errors)}

    def run(self, item: WorkItem) -> dict[str, Any]:
        """The part of one item: ``rows``, ``errors`` (per input), ``notes`` and the model's ``labels``."""
        rows: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        notes: list[str] = []
        if item.kind == "images":
            for path in item.paths:
                try:
                    frames = list(self.predictor.predict_source(path))
                except DataError as exc:  # vanished since planning, or not an image at all
                    errors.append({"source": path, "error": str(exc)})
                    continue
                for fr in frames:
                    if fr.error:
                        errors.append({"source": fr.source, "error": fr.error})
                    elif fr.faces:
                        rows += [face_row(f, UNCERTAIN) for f in fr.faces]
                    else:
                        rows.append(no_face_row(fr.source))
        else:
            src = FrameRange(item.paths[0], item.start, item.stop, self.stride)
            for fr in self.predictor.predict_source(src):
                rows += [face_row(f, UNCERTAIN) for f in fr.faces]
            notes += src.notes
        return {"key": item.key, "rows": rows, "errors": errors, "notes": notes, "labels": list(self.predictor.labels)}
