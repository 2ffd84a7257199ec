"""Which faces a person should look at: the one sampling policy for the review queue.

Every source (an uploaded image, a crop, a live page, a file, stream or camera job) passes its
faces through one ``ReviewSampler``, so a site's queue means the same thing whatever fed it:

- **uncertain** faces (below the threshold) are queued; a tracked face again only after
  ``cooldown_s`` seconds or when its top label changes, so one person standing in view does not
  flood the queue while twenty different people each get their turn;
- near-identical crops (a still camera, a repeated upload) are queued once: a tiny grey
  thumbnail's mean absolute difference to the recent ones must exceed ``dedupe``;
- an **audit** share of confident faces (``audit_rate``, default 5 %) is queued too, chosen at
  random and marked as such: labels of the uncertain faces alone would say nothing about how
  often the model is right when it is sure, and the site's accuracy could not be estimated
  without bias.

The sampler keeps no face pixels beyond a few thumbnails for de-duplication.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..labels import UNCERTAIN
from ..utils.errors import ConfigError
from .results import FaceResult

UNCERTAIN_REASON, AUDIT_REASON = "uncertain", "audit"


@dataclass(frozen=True)
class Pick:
    """One face chosen for review: why (``reason``), and the group it belongs to (the track, or
    the source and capture day) so that held-out splits never separate a person's frames."""

    index: int
    reason: str
    group: str


class ReviewSampler:
    """The review policy for one service or job; ``select`` is called once per frame."""

    def __init__(
        self,
        audit_rate: float = 0.05,
        cooldown_s: float = 30.0,
        dedupe: float = 3.0,
        memory: int = 64,
        seed: int | None = None,
    ):
        if not 0.0 <= audit_rate <= 1.0 or cooldown_s < 0 or dedupe < 0 or memory < 0:
            raise ConfigError("audit_rate must be in [0, 1]; cooldown_s, dedupe and memory >= 0")
        self.audit_rate, self.cooldown_s, self.dedupe = audit_rate, cooldown_s, dedupe
        self._rng = random.Random(seed)
        self._tracks: dict[tuple[str, int], tuple[float, str]] = {}  # (source, track) -> (time, label queued)
        self._recent: deque[np.ndarray] = deque(maxlen=memory)

    def select(
        self, faces: list[FaceResult], crops: list[np.ndarray], source: str, now: float, day: str = ""
    ) -> list[Pick]:
        """The faces of one frame to queue. ``now``: capture time in seconds (a video's clock or
        the wall clock); ``day``: the capture day, the default group of untracked faces."""
        picks = []
        for i, (face, crop) in enumerate(zip(faces, crops, strict=True)):
            reason = self._reason(face, source, now)
            if reason is None or self._duplicate(crop):
                continue
            group = f"{source}#track{face.track}" if face.track is not None else f"{source}@{day}" if day else source
            picks.append(Pick(i, reason, group))
        return picks

    def _reason(self, face: FaceResult, source: str, now: float) -> str | None:
        uncertain = face.label == UNCERTAIN
        top = face.top2[0][0] if uncertain and face.top2 else face.label
        if face.track is None:
            return UNCERTAIN_REASON if uncertain else self._audit()
        key = (source, face.track)
        last = self._tracks.get(key)
        if last is not None and now - last[0] < self.cooldown_s and last[1] == top:
            return None  # this track was queued recently with the same label
        reason = UNCERTAIN_REASON if uncertain else self._audit()
        if reason is not None:
            self._tracks[key] = (now, top)
            if len(self._tracks) > 10_000:  # long-running cameras: forget the oldest tracks
                for k in sorted(self._tracks, key=lambda k: self._tracks[k][0])[:5_000]:
                    del self._tracks[k]
        return reason

    def _audit(self) -> str | None:
        return AUDIT_REASON if self.audit_rate and self._rng.random() < self.audit_rate else None

    def _duplicate(self, crop: np.ndarray) -> bool:
        """Whether a crop nearly repeats one queued recently (and remember it if not)."""
        if not self.dedupe or crop.size == 0:
            return False
        thumb = _thumbnail(crop)
        if any(float(np.abs(thumb - r).mean()) < self.dedupe for r in self._recent):
            return True
        self._recent.append(thumb)
        return False


def _thumbnail(crop: np.ndarray) -> np.ndarray:
    import cv2

    gray = crop if crop.ndim == 2 else cv2.cvtColor(crop[..., :3], cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
