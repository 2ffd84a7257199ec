"""The service's working parts, independent of HTTP: one Predictor, its micro-batcher, a pool of
threads that decode and detect, the metrics, the job manager and (when on) the review store.

Detection runs in a thread pool with one detector per thread (OpenCV's cascade object is not
documented as safe to share between threads); classification goes through the micro-batcher so
concurrent requests share model calls. Face results come from the Predictor's own rules (the
threshold, top-2 for uncertain faces), never re-implemented here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..inference.faces import create_detector
from ..inference.predictor import IoUTracker, Predictor
from ..inference.results import FaceResult
from ..inference.sources import Frame
from ..labels import UNCERTAIN
from .batcher import MicroBatcher
from .imaging import decode_image
from .metrics import Metrics
from .ondevice import OnDevice
from .settings import ServeSettings


def face_json(face: FaceResult) -> dict[str, Any]:
    """A face as the API returns it: ``to_dict`` plus an explicit ``uncertain`` flag."""
    d = face.to_dict()
    d["uncertain"] = face.label == UNCERTAIN
    return d


def _model_backend(settings: ServeSettings) -> Any:
    """The weights as given, or with ``engine='onnxruntime'`` an onnxruntime session of them (a
    checkpoint is converted once, through the same cached export as the page's on-device mode)."""
    if settings.engine != "onnxruntime" or settings.model.lower().endswith(".onnx"):
        return settings.model
    import os
    import tempfile

    from ..inference.backends import OnnxBackend
    from .ondevice import OnDevice

    data = OnDevice(settings.model, None).model_bytes()
    fd, path = tempfile.mkstemp(suffix=".onnx", prefix="resemotenet-serve-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return OnnxBackend(path)  # the session holds the graph in memory; the file goes at once
    finally:
        os.unlink(path)


class Service:
    """Everything a request handler needs; built once per process."""

    def __init__(self, settings: ServeSettings, predictor: Predictor | None = None):
        self.settings = settings
        self.predictor = predictor or Predictor(
            _model_backend(settings),
            detector=settings.detector,
            min_confidence=settings.min_confidence,
            batch_size=settings.max_batch,
            device=settings.device,
        )
        if predictor is None:
            self.predictor.model_source = settings.model  # Grad-CAM needs the torch weights, whatever the engine
        self.model_name = str(self.predictor.backend.meta.get("model", settings.model))
        self.batcher = MicroBatcher(
            self.predictor.classify,
            settings.max_batch,
            settings.max_wait_ms / 1000,
            settings.max_queue,
            enabled=settings.batching,
        )
        self.pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="detect")
        self._local = threading.local()
        self.metrics = Metrics()
        self.started = time.time()
        from .jobs import JobManager
        from .review import ReviewStore

        self.review = ReviewStore(settings.review, self.labels, settings.review_max) if settings.review else None
        self.jobs = JobManager(self, settings.stream_timeout_s, settings.stream_give_up_s)
        self.on_device = OnDevice(settings.model, self.predictor)
        self.metrics.gauge("resemotenet_queue_depth", "Requests waiting for the model.", lambda: self.batcher.depth)
        self.metrics.gauge(
            "resemotenet_model_calls_total", "Model calls made by the micro-batcher.", lambda: self.batcher.calls
        )
        self.metrics.gauge("resemotenet_jobs_running", "Video and camera jobs running.", self.jobs.running)
        self.metrics.gauge(
            "resemotenet_review_pending",
            "Faces waiting for review.",
            lambda: self.review.pending_count() if self.review else 0,
        )

    @property
    def labels(self) -> tuple[str, ...]:
        return self.predictor.labels

    def model_info(self) -> dict[str, Any]:
        meta = self.predictor.backend.meta
        return {
            "name": self.model_name,
            "weights": self.settings.model,
            "labels": list(self.labels),
            "preprocess": meta.get("preprocess"),
            "temperature": self.predictor.temperature,
            "min_confidence": self.predictor.min_confidence,
            "detector": self.settings.detector,
            "batching": self.settings.batching,
            "max_batch": self.settings.max_batch,
        }

    def _detector(self) -> Any:
        det = getattr(self._local, "detector", None)
        if det is None:
            # one thread each: the pool's workers fill the cores (2 workers x 1 thread detect about
            # twice the frames/s of 2 workers x 2 threads on a 2-core machine; see README)
            options = {"threads": 1} if self.settings.detector == "centerface" else {}
            det = self._local.detector = create_detector(self.settings.detector, **options)
        return det

    def decode_and_detect(self, data: bytes) -> tuple[np.ndarray, list[tuple[tuple[int, int, int, int], np.ndarray]]]:
        """Runs in the pool: the image and (box, crop) for each face in it."""
        rgb = decode_image(data, self.settings.max_pixels)
        return rgb, self.predictor.detect(rgb, self._detector())

    async def _in_pool(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def classify_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """Probabilities for the crops, through the micro-batcher."""
        if not crops:
            return np.zeros((0, len(self.labels)), np.float32)
        return await asyncio.wrap_future(self.batcher.submit(crops))

    async def predict_bytes(
        self, data: bytes, source: str = "<upload>", tracker: IoUTracker | None = None, seen: set[int] | None = None
    ) -> tuple[np.ndarray, list[FaceResult]]:
        """Every face of an encoded image; a ``tracker`` (live video) smooths and numbers them, and
        ``seen`` (the tracks already queued for review) keeps a live face from flooding the queue."""
        rgb, found = await self._in_pool(self.decode_and_detect, data)
        probs = await self.classify_crops([c for _, c in found])
        boxes = [b for b, _ in found]
        ids: list[int | None] = [None] * len(found)
        if tracker is not None and found:
            ids, probs = tracker.update(boxes, probs)
        frame = Frame(source)
        faces = [self.predictor._result(frame, b, p, t) for b, p, t in zip(boxes, probs, ids, strict=True)]
        self.metrics.count_faces([f.label for f in faces])
        self._to_review(faces, [c for _, c in found], source, seen)
        return rgb, faces

    async def classify_bytes(self, items: list[bytes], source: str = "<crop>") -> list[FaceResult]:
        """One result per face crop (the caller's own detector found the faces)."""
        crops = await self._in_pool(lambda: [decode_image(d, self.settings.max_pixels) for d in items])
        probs = await self.classify_crops(crops)
        faces = []
        for i, (crop, p) in enumerate(zip(crops, probs, strict=True)):
            h, w = crop.shape[:2]
            faces.append(self.predictor._result(Frame(source, i), (0, 0, w, h), p, None))
        self.metrics.count_faces([f.label for f in faces])
        self._to_review(faces, crops, source)
        return faces

    def _to_review(
        self, faces: list[FaceResult], crops: list[np.ndarray], source: str, seen: set[int] | None = None
    ) -> None:
        """Queue the uncertain faces (review on only); a tracked face once per track."""
        if self.review is None:
            return
        for face, crop in zip(faces, crops, strict=True):
            if face.label != UNCERTAIN or (seen is not None and face.track in seen):
                continue
            if seen is not None and face.track is not None:
                seen.add(face.track)
            self.review.add(crop, face, source)

    def close(self) -> None:
        self.jobs.stop_all()
        self.batcher.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
