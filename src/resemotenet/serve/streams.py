"""Camera streams that reconnect: an ``rtsp://``/``http://`` URL or a device index.

A camera on a network drops now and then. ``ReconnectingStream`` reopens it with exponential
back-off (0.5 s doubling to ``max_backoff_s``) and records every gap (when it started, when frames
came back, how many attempts it took), so the results say where they are missing instead of
silently joining the two sides. After ``give_up_s`` without frames the stream ends with a
``DataError`` naming the gap. Frames are timestamped by the wall clock since the job started, so
a gap shows as a gap in time too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..imaging import check_frame_size
from ..inference.sources import Frame, Source
from ..utils.errors import DataError
from .errors import Unprocessable
from .settings import STREAM_SCHEMES


def check_stream_url(url: str) -> str:
    """The URL if its scheme is allowed and it names a host, else ``Unprocessable`` (422)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in STREAM_SCHEMES or not parts.hostname:
        raise Unprocessable(f"stream URLs must be {', '.join(s + '://HOST/...' for s in STREAM_SCHEMES)}")
    return url


def open_capture(target: str | int, timeout_s: float) -> Any:
    """An opened ``cv2.VideoCapture`` or None; network opens and reads give up after ``timeout_s``."""
    import cv2

    if isinstance(target, int):
        cap = cv2.VideoCapture(target)
    else:
        ms = int(timeout_s * 1000)
        cap = cv2.VideoCapture(
            target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        )
    if not cap.isOpened():
        cap.release()
        return None
    w, h = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    try:
        check_frame_size(w, h, "stream")
    except DataError:
        cap.release()
        raise
    return cap


class ReconnectingStream(Source):
    """A live source (``kind='webcam'``: tracked, classified frame by frame) that survives drops."""

    kind = "webcam"
    live = True

    def __init__(
        self,
        target: str | int,
        cap: Any,
        stride: int = 1,
        max_frames: int | None = None,
        timeout_s: float = 5.0,
        max_backoff_s: float = 8.0,
        give_up_s: float = 120.0,
    ):
        name = f"webcam:{target}" if isinstance(target, int) else _redact(target)
        super().__init__(name, max_frames)
        self.target, self.cap, self.stride = target, cap, max(1, stride)
        self.timeout_s, self.max_backoff_s, self.give_up_s = timeout_s, max_backoff_s, give_up_s
        self.gaps: list[dict[str, Any]] = []
        self.reconnecting = False
        self.stopped = threading.Event()
        self.start = time.monotonic()

    def stop(self) -> None:
        self.stopped.set()

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        index = emitted = 0
        try:
            while not self.stopped.is_set() and (self.max_frames is None or emitted < self.max_frames):
                ok, bgr = (False, None) if self.cap is None else self.cap.read()
                if not ok or bgr is None:
                    self._reconnect()
                    continue
                index += 1
                if (index - 1) % self.stride:
                    continue
                emitted += 1
                rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                yield Frame(self.name, index - 1, time.monotonic() - self.start, rgb)
        finally:
            if self.cap is not None:
                self.cap.release()

    def _reconnect(self) -> None:
        """Back off and reopen until frames can come again; record the gap."""
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        began = time.monotonic()
        gap = {"start": round(began - self.start, 3), "end": None, "seconds": None, "attempts": 0}
        self.gaps.append(gap)
        self.reconnecting, delay = True, 0.5
        while not self.stopped.is_set():
            if time.monotonic() - began > self.give_up_s:
                self.reconnecting = False
                raise DataError(
                    f"{self.name}: no frames for {self.give_up_s:.0f} s after a drop at "
                    f"{gap['start']:.1f} s; gave up after {gap['attempts']} attempts"
                )
            self.stopped.wait(delay)
            delay = min(delay * 2, self.max_backoff_s)
            gap["attempts"] += 1
            self.cap = open_capture(self.target, self.timeout_s)
            if self.cap is not None:
                break
        now = time.monotonic()
        gap["end"], gap["seconds"] = round(now - self.start, 3), round(now - began, 3)
        self.reconnecting = False
        self.notes.append(
            f"{self.name}: no frames from {gap['start']:.1f} s to {gap['end']:.1f} s "
            f"({gap['seconds']:.1f} s, reconnected after {gap['attempts']} attempt(s))"
        )


def _redact(url: str) -> str:
    """The URL without a password, for names that end up in results and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
