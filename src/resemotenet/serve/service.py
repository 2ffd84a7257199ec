"""The service's working parts, independent of HTTP: one Predictor, its micro-batcher, a pool of
threads that decode and detect, the metrics, the job manager and (when on) the review store.

Detection runs in a thread pool with one detector per thread (OpenCV's cascade object is not
documented as safe to share between threads); classification goes through the micro-batcher so
concurrent requests share model calls. Both have a bounded queue (``pool.BoundedPool``,
``MicroBatcher.max_queue``): beyond it a request is refused at once with 503 and ``Retry-After``
rather than made to wait behind everyone else. Face results come from the Predictor's own rules (the
threshold, top-2 for uncertain faces), never re-implemented here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..inference.faces import create_detector
from ..inference.predictor import Face, Predictor
from ..inference.results import FaceResult
from ..inference.sampling import ReviewSampler
from ..inference.sources import Frame
from ..inference.tracking import IoUTracker
from .batcher import MicroBatcher
from .imaging import decode_image
from .metrics import Metrics
from .ondevice import OnDevice
from .pool import BoundedPool
from .settings import ServeSettings


def face_json(face: FaceResult) -> dict[str, Any]:
    """A face as the API returns it: the one face row (``FaceResult.to_dict``)."""
    return face.to_dict()


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
        self.model_name = self.predictor.card.name
        self._swap_lock = threading.Lock()
        self.batcher = MicroBatcher(
            lambda crops: self.predictor.score(crops),  # whichever model is served now (promote swaps it)
            settings.max_batch,
            settings.max_wait_ms / 1000,
            settings.max_queue,
            enabled=settings.batching,
            retry_after_s=settings.retry_after_s,
        )
        self.pool = BoundedPool(
            settings.workers, settings.max_detect_queue, settings.retry_after_s, settings.max_detect_wait_ms / 1000
        )
        self._local = threading.local()
        self.busy_frames, self._busy_lock = 0, threading.Lock()  # images detected at busy_detect_side
        self.metrics = Metrics()
        self.started = time.time()
        from .jobs import JobManager
        from .review import ReviewStore

        self.review = ReviewStore(settings.review, self.labels, settings.review_max) if settings.review else None
        self.sampler = ReviewSampler(audit_rate=settings.audit_rate, cooldown_s=settings.review_cooldown_s)
        self._sampler_lock = threading.Lock()
        self.jobs = JobManager(self, settings.stream_timeout_s, settings.stream_give_up_s, settings.jobs_folder)
        self.on_device = OnDevice(settings.model, self.predictor)
        from .site import SiteLoop

        self.site = SiteLoop(self) if self.review is not None else None
        self._queue_metrics()
        self.metrics.gauge(
            "resemotenet_model_calls_total", "Model calls made by the micro-batcher.", lambda: self.batcher.calls
        )
        self.metrics.gauge("resemotenet_jobs_running", "Video and camera jobs running.", self.jobs.running)
        self.metrics.gauge(
            "resemotenet_review_pending",
            "Faces waiting for review.",
            lambda: self.review.pending_count() if self.review else 0,
        )

    def _queue_metrics(self) -> None:
        m, pool, batcher = self.metrics, self.pool, self.batcher
        m.gauge("resemotenet_queue_depth", "Requests waiting for the model.", lambda: batcher.depth)
        m.gauge("resemotenet_detect_queue_depth", "Images waiting for a detection worker.", lambda: pool.depth)
        m.gauge(
            "resemotenet_detect_job_seconds",
            "Recent time per image in a detection worker (moving average; admission uses it).",
            lambda: pool.job_s,
        )
        m.gauge(
            "resemotenet_detect_busy_frames_total",
            "Images detected on smaller frames (--busy-detect-side) because others were waiting.",
            lambda: self.busy_frames,
            "counter",
        )
        m.gauge(
            "resemotenet_model_rejected_total",
            "Requests refused (503) because the model's queue was full.",
            lambda: batcher.rejected,
            "counter",
        )
        m.gauge(
            "resemotenet_detect_rejected_total",
            "Requests refused (503) because the detection queue was full.",
            lambda: pool.rejected,
            "counter",
        )
        for reason, what in (("full", "the review queue was full"), ("request_cap", "one request's share was spent")):
            m.gauge(
                f"resemotenet_review_refused_{reason}_total",
                f"Uncertain faces not queued for review because {what}.",
                lambda reason=reason: self.review.refused[reason] if self.review else 0,
                "counter",
            )

    @property
    def labels(self) -> tuple[str, ...]:
        return self.predictor.labels

    def model_info(self) -> dict[str, Any]:
        return {
            "name": self.model_name,
            "weights": self.site.shown()
            if self.site is not None
            else Path(self.settings.model).name,  # never a server path,
            "labels": list(self.labels),
            "preprocess": self.predictor.card.preprocess.to_dict(),
            "temperature": self.predictor.temperature,
            "min_confidence": self.predictor.min_confidence,
            "detector": self.settings.detector,
            "batching": self.settings.batching,
            "max_batch": self.settings.max_batch,
        }

    def _detector(self) -> Any:
        """This worker thread's detector; with ``settings.busy_side``, a second one on smaller frames
        while images wait in the queue (boxes are mapped back to the full frame, and the crops are
        cut from it with the card's framing, so only the smallest faces are lost)."""
        busy = self.settings.busy_side is not None and self.pool.depth > 0
        key = "busy_detector" if busy else "detector"
        det = getattr(self._local, key, None)
        if det is None:
            # one thread each: the pool's workers fill the cores (2 workers x 1 thread detect about
            # twice the frames/s of 2 workers x 2 threads on a 2-core machine; see README)
            options: dict[str, Any] = {"threads": 1} if self.settings.detector == "centerface" else {}
            if busy:
                options["max_side"] = self.settings.busy_side
            det = create_detector(self.settings.detector, **options)
            setattr(self._local, key, det)
        if busy:
            with self._busy_lock:
                self.busy_frames += 1
        return det

    def decode_and_locate(self, data: bytes) -> tuple[np.ndarray, list[Face]]:
        """Runs in the pool: the image and its located faces (the Predictor's stage 1)."""
        rgb = decode_image(data, self.settings.max_pixels)
        return rgb, self.predictor.locate(rgb, self._detector())

    async def _in_pool(self, fn: Any, *args: Any) -> Any:
        """Run in the detection pool; ``Busy`` (503) at once when its queue is full."""
        return await asyncio.wrap_future(self.pool.submit(fn, *args))

    async def classify_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """Probabilities for the crops (the Predictor's stage 2), through the micro-batcher."""
        if not crops:
            return np.zeros((0, len(self.labels)), np.float32)
        return await asyncio.wrap_future(self.batcher.submit(crops))

    async def predict_bytes(
        self, data: bytes, source: str = "<upload>", tracker: IoUTracker | None = None, now: float | None = None
    ) -> tuple[np.ndarray, list[FaceResult]]:
        """Every face of an encoded image: locate in the pool, score in the micro-batcher, decide;
        a ``tracker`` (live video) numbers and smooths them. Faces go to review by the one policy."""
        rgb, found = await self._in_pool(self.decode_and_locate, data)
        probs = await self.classify_crops([f.crop for f in found])
        faces = self.predictor.decide(Frame(source), found, probs, tracker)
        self.metrics.count_faces([f.label for f in faces])
        self.to_review(faces, [f.crop for f in found], source, now)
        return rgb, faces

    async def classify_bytes(self, items: list[bytes], source: str = "<crop>") -> list[FaceResult]:
        """One result per face crop (the caller's own detector found the faces)."""
        crops = await self._in_pool(lambda: [decode_image(d, self.settings.max_pixels) for d in items])
        probs = await self.classify_crops(crops)
        faces = [
            self.predictor.decide(Frame(source, i), [(0, 0, c.shape[1], c.shape[0])], probs[i : i + 1])[0]
            for i, c in enumerate(crops)
        ]
        self.metrics.count_faces([f.label for f in faces])
        self.to_review(faces, crops, source)
        return faces

    def to_review(self, faces: list[FaceResult], crops: list[np.ndarray], source: str, now: float | None = None) -> int:
        """Queue what the review policy picks (``inference.sampling``; review on only): uncertain
        faces, a tracked face again after a cooldown or a label change, and an audit share of
        confident faces. ``now``: capture time (a video's clock; default the wall clock).
        Returns how many were queued."""
        if self.review is None or not faces:
            return 0
        now = time.time() if now is None else now
        wall = now if now > 1e9 else time.time()  # a clock that is not the wall clock's: capture time is now
        day = time.strftime("%Y-%m-%d", time.localtime(wall))
        with self._sampler_lock:
            picks = self.sampler.select(faces, crops, source, now, day)
        for pick in picks:
            self.review.add(
                crops[pick.index], faces[pick.index], source, reason=pick.reason, group=pick.group, captured=wall
            )
        return len(picks)

    def swap_model(self, weights: str, predictor: Predictor | None = None) -> Predictor:
        """Serve ``weights`` (or an already opened ``predictor`` of them) from the next request on,
        with this service's detector, threshold rule and batch size; returns the Predictor it
        replaced. Requests in flight finish on the model they started with."""
        new = predictor or Predictor(
            weights,
            detector=self.settings.detector,
            min_confidence=self.settings.min_confidence,
            batch_size=self.settings.max_batch,
            device=self.settings.device,
        )
        with self._swap_lock:
            old, self.predictor = self.predictor, new
            self.model_name = new.card.name
            self.on_device = OnDevice(weights, new)
        return old

    def close(self) -> None:
        self.jobs.close()
        if self.site is not None:
            self.site.stop_all()
        self.batcher.close()
        self.pool.shutdown()
        if self.review is not None:
            self.review.close()
