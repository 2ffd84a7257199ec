"""The detection pool with a bounded queue: admission control in front of face detection.

A ``ThreadPoolExecutor`` queues without limit, so an overloaded service only gets slower: every
request waits behind all the others and none is refused. ``BoundedPool`` admits a job only while

- fewer than ``workers + max_queue`` jobs are in flight (running or waiting), and
- the wait it would face, estimated from the recent time per job (a moving average measured in
  the workers, so it grows when the machine is shared), is at most ``max_wait_s``;

beyond either it raises ``Busy`` (503 with ``Retry-After``) at once, before any work is spent on
the request, and counts the refusal. The count bound caps memory; the time bound keeps the
latency of admitted requests near its target on a slow or busy machine too, where a fixed queue
of 8 frames can mean seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .errors import Busy

SMOOTHING = 0.2  # weight of the newest job in the moving average of the time per job


class BoundedPool:
    """``submit(fn, *args)`` returns a Future, or raises ``Busy`` when the queue is full."""

    def __init__(
        self,
        workers: int,
        max_queue: int,
        retry_after_s: int = 1,
        max_wait_s: float | None = None,
        name: str = "detect",
    ):
        self.workers, self.max_queue, self.retry_after_s = workers, max_queue, retry_after_s
        self.max_wait_s = max_wait_s
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._in_flight = 0
        self.job_s = 0.0  # moving average of one job's time in a worker (0 until the first ends)
        self.rejected = 0

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker (not counting those running)."""
        return max(0, self._in_flight - self.workers)

    def expected_wait_s(self) -> float:
        """How long a job submitted now would wait for a worker, by the recent time per job."""
        ahead = self._in_flight - self.workers + 1  # jobs that must finish before it starts
        return max(0, ahead) * self.job_s / self.workers

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        with self._lock:
            full = self._in_flight >= self.workers + self.max_queue
            slow = self.max_wait_s is not None and self.expected_wait_s() > self.max_wait_s
            if full or slow:
                self.rejected += 1
                why = f"{self.depth} images are waiting" + (
                    "" if full else f", about {self.expected_wait_s() * 1000:.0f} ms of work"
                )
                raise Busy(f"busy: {why} for face detection; retry in {self.retry_after_s} s", self.retry_after_s)
            self._in_flight += 1
        try:
            fut = self._pool.submit(self._timed, fn, args)
        except RuntimeError:  # shut down
            self._release(None)
            raise Busy("the service is shutting down", self.retry_after_s) from None
        fut.add_done_callback(self._release)
        return fut

    def _timed(self, fn: Callable[..., Any], args: tuple) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            took = time.perf_counter() - start
            with self._lock:
                self.job_s = took if self.job_s == 0 else (1 - SMOOTHING) * self.job_s + SMOOTHING * took

    def _release(self, _: Future | None) -> None:
        with self._lock:
            self._in_flight -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
