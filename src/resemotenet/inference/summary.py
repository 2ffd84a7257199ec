"""The counts of a prediction run: faces per emotion, and per video the share of face-time per
emotion; failed inputs and notes for the user."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from .results import FrameResult


class RunSummary:
    """Counts of a run: faces per emotion over everything, and for each video the share of
    face-time per emotion (each processed frame lasts until the next processed one)."""

    def __init__(self) -> None:
        self.images = self.frames = 0
        self.videos: list[str] = []
        self.per_emotion: Counter[str] = Counter()
        self.failed: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self._seconds: dict[str, Counter[str]] = defaultdict(Counter)
        self._last: dict[str, tuple[float, list[str]]] = {}
        self._steps: dict[str, list[float]] = defaultdict(list)

    def add(self, result: FrameResult, timed: bool = False) -> None:
        """Count one frame; ``timed`` frames (video, webcam) also accrue time per emotion."""
        if result.error is not None:
            self.failed.append((result.source, result.error))
            return
        self.frames += 1
        self.per_emotion.update(f.label for f in result.faces)
        if not timed or result.timestamp is None:
            self.images += 1
            return
        if result.source not in self._seconds:
            self.videos.append(result.source)
            self._seconds[result.source] = Counter()
        labels = [f.label for f in result.faces]
        last = self._last.get(result.source)
        if last is not None and result.timestamp > last[0]:
            self._accrue(result.source, result.timestamp - last[0], last[1])
        self._last[result.source] = (result.timestamp, labels)

    def _accrue(self, source: str, dt: float, labels: list[str]) -> None:
        self._steps[source].append(dt)
        for label in labels or [""]:  # "" = no face in the frame
            self._seconds[source][label] += dt

    def end_source(self, source: str) -> None:
        """Give the source's last frame the typical frame duration."""
        last = self._last.pop(source, None)
        if last is not None and self._steps[source]:
            self._accrue(source, float(np.median(self._steps[source])), last[1])

    def fail(self, source: str, message: str) -> None:
        self.failed.append((source, message))

    def time_shares(self, source: str) -> dict[str, Any]:
        """{'seconds', 'face_share', 'emotions': {label: share of face-time}} for one video."""
        sec = self._seconds.get(source, Counter())
        total = sum(self._steps[source])
        face_time = {k: v for k, v in sec.items() if k}
        with_face = total - sec.get("", 0.0)
        denom = sum(face_time.values())
        emotions = {k: v / denom for k, v in sorted(face_time.items(), key=lambda kv: -kv[1])} if denom else {}
        return {"seconds": total, "face_share": with_face / total if total else 0.0, "emotions": emotions}

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "frames": self.frames,
            "faces": sum(self.per_emotion.values()),
            "per_emotion": dict(self.per_emotion.most_common()),
            "videos": {v: self.time_shares(v) for v in self.videos},
            "failed": [{"source": s, "error": e} for s, e in self.failed],
            "notes": list(self.notes),
        }

    def lines(self) -> list[str]:
        d = self.to_dict()
        out = [
            f"{d['frames']} frame(s) analysed ({d['images']} still image(s), {len(self.videos)} video "
            f"stream(s)): {d['faces']} face(s)"
        ]
        if d["per_emotion"]:
            out.append("faces per emotion: " + ", ".join(f"{k} {v}" for k, v in d["per_emotion"].items()))
        for video, s in d["videos"].items():
            shares = ", ".join(f"{k} {v:.0%}" for k, v in s["emotions"].items()) or "no face"
            out.append(
                f"{video}: {s['seconds']:.1f} s, a face in {s['face_share']:.0%} of it; time per emotion: {shares}"
            )
        out += [f"note: {n}" for n in self.notes]
        return out

    def failure_lines(self) -> list[str]:
        """One line per failed input, naming it (for stderr)."""
        return [msg if src in msg else f"{src}: {msg}" for src, msg in self.failed]
