"""A micro-batcher: concurrent requests' face crops merged into one model call.

A model call on a batch of 32 crops costs far less than 32 calls on one crop each, because the
per-call overhead (Python, operator dispatch, thread wake-ups) dominates at batch 1. The first
request of a batch waits at most ``max_wait_s`` for others to arrive, so a lone request pays a
few milliseconds at worst; under load, batches fill up and throughput rises. One worker thread
runs every model call, so the model is never called concurrently with itself. With
``enabled=False`` each request is its own model call, in arrival order (the baseline the load
benchmark compares against).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from .errors import Busy, Unavailable


class MicroBatcher:
    """``submit(crops)`` returns a Future of the probabilities (len(crops), classes)."""

    def __init__(
        self,
        fn: Callable[[list[np.ndarray]], np.ndarray],
        max_batch: int = 64,
        max_wait_s: float = 0.005,
        max_queue: int = 256,
        enabled: bool = True,
        retry_after_s: int = 1,
    ):
        self.fn, self.max_batch, self.max_wait_s = fn, max_batch, max_wait_s
        self.max_queue, self.enabled, self.retry_after_s = max_queue, enabled, retry_after_s
        self._queue: deque[tuple[list[np.ndarray], Future]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.calls = self.batched_requests = self.crops = 0
        self.rejected = 0  # requests refused because the queue was full
        self._thread = threading.Thread(target=self._loop, name="micro-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting for the model (not counting the batch being computed)."""
        return len(self._queue)

    def submit(self, crops: list[np.ndarray]) -> Future:
        """Queue the crops; raises ``Busy`` (503 with Retry-After) when the queue is full,
        ``Unavailable`` when closed."""
        fut: Future = Future()
        if not crops:
            fut.set_result(np.zeros((0, 0), np.float32))
            return fut
        with self._cond:
            if self._closed:
                raise Unavailable("the service is shutting down")
            if len(self._queue) >= self.max_queue:
                self.rejected += 1
                raise Busy(
                    f"busy: {len(self._queue)} requests are waiting for the model; retry in {self.retry_after_s} s",
                    self.retry_after_s,
                )
            self._queue.append((crops, fut))
            self._cond.notify()
        return fut

    def close(self) -> None:
        """Stop the worker after the queued requests are answered."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=10)

    def _take(self) -> list[tuple[list[np.ndarray], Future]] | None:
        """Block for the first request, then gather more until full or the wait is over."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            batch = [self._queue.popleft()]
            if not self.enabled:
                return batch
            n = len(batch[0][0])
            deadline = time.monotonic() + self.max_wait_s
            while n < self.max_batch:
                if not self._queue:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        break
                    self._cond.wait(left)
                    continue
                if n + len(self._queue[0][0]) > self.max_batch:
                    break
                item = self._queue.popleft()
                batch.append(item)
                n += len(item[0])
            return batch

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            crops = [c for item, _ in batch for c in item]
            try:
                probs = self.fn(crops)
            except Exception as exc:  # noqa: BLE001 - every waiting request learns why, none hangs
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            self.calls += 1
            self.batched_requests += len(batch)
            self.crops += len(crops)
            at = 0
            for item, fut in batch:
                fut.set_result(probs[at : at + len(item)])
                at += len(item)
