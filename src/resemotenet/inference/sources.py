"""Frames to analyse, from an image file, a folder of images, a video file or a webcam.

Rules every source follows: a source that cannot be opened at all (missing path, unreadable
video, absent webcam) raises ``DataError`` when it is opened; an item that fails inside a
source (a truncated JPEG in a folder) is yielded as a ``Frame`` with ``error`` set, so one bad
file never stops a batch run. Irregularities that are not failures (a video whose header
promises more frames than it holds) are collected in ``notes``. Frames are uint8 RGB.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..imaging import IMAGE_EXTS, VIDEO_EXTS, check_frame_size, media_files, read_image
from ..utils.errors import ConfigError, DataError

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "Frame", "Source", "open_source"]  # the extensions live in imaging


@dataclass
class Frame:
    """One frame: ``index`` counts frames of the video (0 for a still image), ``timestamp`` is
    seconds from its start (None for still images)."""

    source: str
    index: int = 0
    timestamp: float | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None


def check_frame_options(stride: int = 1, max_frames: int | None = None) -> None:
    """``stride`` and ``max_frames`` as every source checks them, for callers that must refuse
    bad values before they open an output."""
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be >= 1, got {max_frames}")


class Source:
    """Base class: iterate for ``Frame``s; ``kind`` is image, folder, video or webcam."""

    kind = "image"
    live = False  # a live source is classified frame by frame (no batching latency)
    fps: float | None = None

    def __init__(self, name: str, max_frames: int | None = None):
        if max_frames is not None and max_frames < 1:
            raise ConfigError(f"max_frames must be >= 1, got {max_frames}")
        self.name, self.max_frames = name, max_frames
        self.notes: list[str] = []

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError


class ImageSource(Source):
    def __init__(self, path: Path, max_frames: int | None = None):
        super().__init__(str(path), max_frames)
        self.path = path

    def __iter__(self) -> Iterator[Frame]:
        try:
            yield Frame(self.name, image=read_image(self.path))
        except DataError as exc:
            yield Frame(self.name, error=str(exc))


class FolderSource(Source):
    """Every image under a folder (recursive, sorted, by extension; hidden files skipped), and
    the videos beside them (``videos``: each is analysed as its own video, frames tracked, with
    the folder's ``stride``; ``Predictor.predict_source`` does that after the images)."""

    kind = "folder"

    def __init__(self, path: Path, max_frames: int | None = None, stride: int = 1):
        super().__init__(str(path), max_frames)
        self.files, self.videos = media_files(path)
        self.root, self.stride = path, stride

    def __iter__(self) -> Iterator[Frame]:
        if not self.files and not self.videos:
            yield Frame(
                self.name,
                error=f"{self.name}: no image or video files ({', '.join(sorted(IMAGE_EXTS | VIDEO_EXTS))})",
            )
        for path in self.files[: self.max_frames]:
            try:
                yield Frame(str(path), image=read_image(path))
            except DataError as exc:
                yield Frame(str(path), error=str(exc))


class _Capture(Source):
    """Shared reading loop of video files and webcams (``cv2.VideoCapture``)."""

    def __init__(self, name: str, cap, stride: int, max_frames: int | None):
        import cv2

        super().__init__(name, max_frames)
        if stride < 1:
            raise ConfigError(f"stride must be >= 1, got {stride}")
        w, h = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
        try:
            check_frame_size(w, h, name)
        except DataError:
            cap.release()
            raise
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else None
        self.cap, self.stride = cap, stride
        self.frames_read = 0

    def _timestamp(self, index: int, start: float) -> float | None:
        raise NotImplementedError

    def _read(self, index: int) -> np.ndarray | None:
        """Decode frame ``index`` (after skipping with ``grab``, which does not convert pixels)."""
        import cv2

        if index % self.stride and not self.live:
            return None if not self.cap.grab() else np.empty(0)
        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            return None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def __iter__(self) -> Iterator[Frame]:
        start, index, emitted = time.monotonic(), 0, 0
        try:
            while self.max_frames is None or emitted < self.max_frames:
                img = self._read(index)
                if img is None:
                    break
                self.frames_read = index + 1
                if img.size:
                    emitted += 1
                    yield Frame(self.name, index, self._timestamp(index, start), img)
                index += 1
        finally:
            self.cap.release()
        self._finish(index, emitted)

    def _finish(self, read: int, emitted: int) -> None:
        pass


class VideoSource(_Capture):
    kind = "video"

    def __init__(self, path: Path, stride: int = 1, max_frames: int | None = None):
        import cv2

        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise DataError(f"{path}: cannot open as a video (unknown format, damaged, or missing codec)")
        super().__init__(str(path), cap, stride, max_frames)
        self.declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def _timestamp(self, index: int, start: float) -> float | None:
        import cv2

        ms = self.cap.get(cv2.CAP_PROP_POS_MSEC)
        if ms > 0 or index == 0:
            return ms / 1000.0
        return index / self.fps if self.fps else None

    def _finish(self, read: int, emitted: int) -> None:
        if read == 0:
            raise DataError(f"{self.name}: no frame could be decoded")
        stopped_early = self.max_frames is not None and emitted >= self.max_frames
        if not stopped_early and self.declared and read < self.declared:
            self.notes.append(
                f"{self.name}: video ended after {read} frames; its header declares "
                f"{self.declared} (truncated or damaged file)"
            )


class WebcamSource(_Capture):
    kind = "webcam"
    live = True

    def __init__(self, index: int, stride: int = 1, max_frames: int | None = None):
        import cv2

        level = cv2.getLogLevel() if hasattr(cv2, "getLogLevel") else None
        if level is not None:
            cv2.setLogLevel(2)  # errors only: OpenCV's per-backend warnings add nothing here
        try:
            cap = cv2.VideoCapture(int(index))
        finally:
            if level is not None:
                cv2.setLogLevel(level)
        if not cap.isOpened():
            raise DataError(f"webcam {index}: cannot be opened (no camera at that index, or it is in use)")
        super().__init__(f"webcam:{index}", cap, stride, max_frames)

    def _timestamp(self, index: int, start: float) -> float | None:
        return time.monotonic() - start  # camera clocks are unreliable; wall time is what happened

    def _read(self, index: int) -> np.ndarray | None:
        img = super()._read(index)
        # a live camera always returns its newest frame; stride drops frames after reading
        return img if img is None or index % self.stride == 0 else np.empty(0)


def open_source(source: str | Path | int, stride: int = 1, max_frames: int | None = None) -> Source:
    """A ``Source`` for a path (image, folder or video, by what it is) or a webcam index (int)."""
    if isinstance(source, int):
        return WebcamSource(source, stride, max_frames)
    path = Path(source)
    if path.is_dir():
        return FolderSource(path, max_frames, stride)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.suffix.lower() in VIDEO_EXTS:
        return VideoSource(path, stride, max_frames)
    return ImageSource(path, max_frames)


def demo_image() -> Path:
    """The public-domain NASA portrait of astronaut Eileen Collins shipped with the package."""
    path = Path(str(resources.files("resemotenet") / "assets" / "astronaut.jpg"))
    if not path.is_file():
        raise DataError(f"{path}: the demo image is missing from this installation")
    return path
