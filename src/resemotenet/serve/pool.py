"""The detection pool with a bounded queue: admission control in front of face detection.

A ``ThreadPoolExecutor`` queues without limit, so an overloaded service only gets slower: every
request waits behind all the others and none is refused. ``BoundedPool`` admits a job only while
fewer than ``workers + max_queue`` are in flight (running or waiting); beyond that it raises
``Busy`` (503 with ``Retry-After``) at once, before any work is spent on the request, and counts
the refusal. Then the wait of an admitted request is bounded by ``max_queue / workers`` jobs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .errors import Busy


class BoundedPool:
    """``submit(fn, *args)`` returns a Future, or raises ``Busy`` when the queue is full."""

    def __init__(self, workers: int, max_queue: int, retry_after_s: int = 1, name: str = "detect"):
        self.workers, self.max_queue, self.retry_after_s = workers, max_queue, retry_after_s
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._in_flight = 0
        self.rejected = 0

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker (not counting those running)."""
        return max(0, self._in_flight - self.workers)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        with self._lock:
            if self._in_flight >= self.workers + self.max_queue:
                self.rejected += 1
                raise Busy(
                    f"busy: {self.max_queue} images are waiting for face detection; retry in {self.retry_after_s} s",
                    self.retry_after_s,
                )
            self._in_flight += 1
        try:
            fut = self._pool.submit(fn, *args)
        except RuntimeError:  # shut down
            self._release(None)
            raise Busy("the service is shutting down", self.retry_after_s) from None
        fut.add_done_callback(self._release)
        return fut

    def _release(self, _: Future | None) -> None:
        with self._lock:
            self._in_flight -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
