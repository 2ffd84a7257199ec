"""What the service is allowed to do, decided once at start-up and checked there.

The defaults are the safe ones: bound to the loopback interface, no token needed there and a
token required for any other bind, no foreign page (not even ``Origin: null``) let in, nothing
kept on disk (review off; job results in a private temporary folder removed on exit), no file
jobs (no media folder), limits on upload size and image pixels, and bounded queues in front of
detection and the model (503 with ``Retry-After`` beyond).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from ..imaging import MAX_PIXELS
from ..utils.errors import ConfigError

TOKEN_ENV = "RESEMOTENET_TOKEN"
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
ENGINES = ("torch", "onnxruntime")
SIDED = ("centerface", "yunet")  # detectors that shrink a frame to ``max_side`` before they search it
BUSY_SIDE = 320  # CenterFace under load: ~2.3x the frames/s of its 480, smallest faces lost (README: load)


def is_loopback(host: str) -> bool:
    """``localhost``, any of 127.0.0.0/8, or ``::1`` (brackets allowed)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServeSettings:
    """Every knob of ``resemotenet serve``; the CLI flags carry the same names."""

    model: str = "default"
    min_confidence: float | None = None  # None: the card's calibrated threshold
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    review: str | None = None  # folder for the review queue; None = review off, nothing written
    audit_rate: float = 0.05  # share of confident faces queued for review as an unbiased audit sample
    review_cooldown_s: float = 30.0  # a tracked face is queued again after this long, or when its label changes
    review_max: int = 2000  # pending review crops; when full, new ones are refused (counted), none evicted
    review_per_request: int = 8  # review items one request (or one live frame) may add
    media_dir: str | None = None  # the one folder file jobs may read from; None = no file jobs
    jobs_dir: str | None = None  # where job results go; None: jobs/ in the review folder, else a temporary one
    detector: str = "centerface"  # the product's default, and the one the page's on-device mode runs
    busy_detect_side: int | None = None  # while images wait, detect on frames shrunk to this side; None: 320 with
    # centerface (README: load), off with the others; 0: off (every frame at the detector's own size)
    device: str = "cpu"
    engine: str = "torch"  # or 'onnxruntime': the model converted to ONNX once at start-up, run by onnxruntime
    batching: bool = True
    max_batch: int = 64  # face crops per model call
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    max_queue: int = 64  # requests waiting for the model; beyond this the service answers 503
    max_detect_queue: int = 64  # images waiting for a detection worker at most (a hard cap); beyond, 503
    max_detect_wait_ms: float = 300.0  # the usual bound: no longer wait, by the recent time per image; else 503
    retry_after_s: int = 1  # the Retry-After a 503 for a full queue carries
    max_upload_mb: float = 16.0  # one image request
    max_clip_mb: float = 512.0  # one uploaded video clip
    max_pixels: int = MAX_PIXELS
    max_crops: int = 256  # face crops in one /v1/classify request
    workers: int = 2  # threads for decoding and face detection
    stream_timeout_s: float = 5.0  # a stream that does not answer within this is refused (503)
    stream_give_up_s: float = 120.0  # a dropped stream is retried this long before its job fails
    allow_origins: tuple[str, ...] = ()  # page origins let in besides the service's own ('null' included)

    def __post_init__(self) -> None:
        if self.token is None:
            self.token = os.environ.get(TOKEN_ENV) or None
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        if min(self.max_batch, self.max_queue, self.workers, self.max_crops, self.retry_after_s) < 1:
            raise ConfigError("max_batch, max_queue, max_crops, workers and retry_after_s must be >= 1")
        if self.max_detect_queue < 0 or self.review_per_request < 0 or self.max_detect_wait_ms <= 0:
            raise ConfigError("max_detect_queue and review_per_request must be >= 0, max_detect_wait_ms > 0")
        if self.max_wait_ms < 0 or self.max_upload_mb <= 0 or self.max_clip_mb <= 0 or self.max_pixels < 1:
            raise ConfigError("max_wait_ms must be >= 0 and the size limits > 0")
        if self.stream_timeout_s <= 0 or self.stream_give_up_s <= 0:
            raise ConfigError("stream_timeout_s and stream_give_up_s must be > 0")
        if self.busy_detect_side and (self.detector not in SIDED or self.busy_detect_side < 32):
            raise ConfigError(f"busy_detect_side needs a detector with a frame size ({', '.join(SIDED)}) and >= 32")
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; valid: {', '.join(ENGINES)}")
        if isinstance(self.allow_origins, str):
            self.allow_origins = (self.allow_origins,)
        self.allow_origins = tuple(o.strip().rstrip("/").lower() for o in self.allow_origins if o.strip())
        if self.review_max < 1:
            raise ConfigError(f"review_max must be >= 1, got {self.review_max}")
        if not self.local and not self.token:
            raise ConfigError(
                f"binding to {self.host} exposes the service beyond this machine: give --token or set {TOKEN_ENV}"
            )
        if self.token is not None and len(self.token) < 8:
            raise ConfigError("the token must be at least 8 characters")
        if self.media_dir is not None and not Path(self.media_dir).is_dir():
            raise ConfigError(f"{self.media_dir}: media folder not found")

    @property
    def busy_side(self) -> int | None:
        """The frame side detection uses while images wait (None: the detector's own, always)."""
        if self.busy_detect_side is None:
            return BUSY_SIDE if self.detector == "centerface" else None
        return self.busy_detect_side or None

    @property
    def local(self) -> bool:
        """True when only this machine can connect (a loopback address or ``localhost``)."""
        return is_loopback(self.host)

    @property
    def jobs_folder(self) -> str | None:
        """Where job results are kept across restarts; None: a private temporary folder, removed on exit."""
        if self.jobs_dir is not None:
            return self.jobs_dir
        return str(Path(self.review) / "jobs") if self.review else None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_clip_bytes(self) -> int:
        return int(self.max_clip_mb * 1024 * 1024)
