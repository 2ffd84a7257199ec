"""What a prediction run produces: per-face results, streaming result files, a run summary,
and (only on request) annotated copies of the frames.

Result files are written row by row and flushed after every face rather than atomically at
the end: a run over hours of video that dies still leaves every row written so far valid.
Privacy by default: nothing but the results file is written; no crops, no frames.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..labels import UNCERTAIN
from ..utils.errors import ConfigError, DataError, OutputError
from .faces import Box, expand_box

RESULT_FORMATS = (".jsonl", ".csv")
_ENCODABLE = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class FaceResult:
    """One face in one frame. ``probabilities`` are calibrated (softmax of logits / temperature)
    and, in a video, smoothed along the face's track; ``label`` is their argmax, or 'uncertain'
    (with ``top2`` candidates for a human to decide) when ``score`` < min_confidence."""

    source: str
    frame: int
    timestamp: float | None
    box: Box
    label: str
    score: float
    probabilities: dict[str, float]
    track: int | None = None
    top2: list[tuple[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "frame": self.frame,
            "timestamp": None if self.timestamp is None else round(self.timestamp, 4),
            "box": [int(v) for v in self.box], "label": self.label, "score": round(self.score, 6),
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "track": self.track,
            "top2": None if self.top2 is None else [[n, round(p, 6)] for n, p in self.top2],
        }


@dataclass
class FrameResult:
    """The faces of one frame, or the reason the frame (an image of a folder) failed."""

    source: str
    frame: int = 0
    timestamp: float | None = None
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)


class ResultWriter:
    """Base of the streaming writers: ``write(face)`` appends one row and flushes."""

    def __init__(self, path: str | Path, labels: tuple[str, ...] | list[str]):
        self.path, self.labels = Path(path), tuple(labels)
        self.rows = self.empty = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f: TextIO = open(self.path, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"{self.path}: cannot write results ({exc.strerror or exc})") from exc
        self._start()

    def _start(self) -> None:
        pass

    def _row(self, face: FaceResult) -> None:
        raise NotImplementedError

    def write(self, face: FaceResult) -> None:
        self._guarded(lambda: self._row(face))
        self.rows += 1

    def write_no_face(self, source: str, frame: int = 0, timestamp: float | None = None) -> None:
        """A row for an image in which no face was found, so 'no face' is told from 'not processed'."""
        self._guarded(lambda: self._empty(source, frame, timestamp))
        self.empty += 1

    def _empty(self, source: str, frame: int, timestamp: float | None) -> None:
        raise NotImplementedError

    def _guarded(self, write: Any) -> None:
        try:
            write()
            self._f.flush()
        except OSError as exc:  # a full disk or a vanished folder: the rows written so far stay valid
            raise OutputError(f"{self.path}: could not write results ({exc.strerror or exc}); "
                              f"the {self.rows} row(s) before it are intact") from exc

    def close(self) -> None:
        try:
            self._f.close()
        except OSError as exc:
            raise OutputError(f"{self.path}: could not write results ({exc.strerror or exc})") from exc

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonlWriter(ResultWriter):
    def _row(self, face: FaceResult) -> None:
        self._f.write(json.dumps({**face.to_dict(), "status": "face"}) + "\n")

    def _empty(self, source: str, frame: int, timestamp: float | None) -> None:
        self._f.write(json.dumps({"source": source, "frame": frame, "timestamp": timestamp, "box": None,
                                  "label": None, "score": None, "probabilities": None, "track": None,
                                  "top2": None, "status": "no_face"}) + "\n")


class CsvWriter(ResultWriter):
    """One row per face; a column per label (``p_<label>``) so spreadsheets need no JSON."""

    def _start(self) -> None:
        self._csv = csv.writer(self._f)
        self._csv.writerow(["source", "frame", "timestamp", "x0", "y0", "x1", "y1", "label", "score", "track",
                            "top2"] + [f"p_{n}" for n in self.labels] + ["status"])
        self._f.flush()

    def _empty(self, source: str, frame: int, timestamp: float | None) -> None:
        self._csv.writerow([source, frame, "" if timestamp is None else timestamp] + [""] * (8 + len(self.labels))
                           + ["no_face"])

    def _row(self, face: FaceResult) -> None:
        d = face.to_dict()
        top2 = "" if face.top2 is None else "|".join(f"{n}:{p:.4f}" for n, p in face.top2)
        self._csv.writerow([d["source"], d["frame"], "" if d["timestamp"] is None else d["timestamp"], *d["box"],
                            d["label"], d["score"], "" if d["track"] is None else d["track"], top2]
                           + [d["probabilities"].get(n, "") for n in self.labels] + ["face"])


def open_writer(path: str | Path, labels: tuple[str, ...] | list[str]) -> ResultWriter:
    """A streaming writer chosen by the file's extension (.jsonl or .csv)."""
    suffix = Path(path).suffix.lower()
    if suffix not in RESULT_FORMATS:
        raise ConfigError(f"{path}: results file must end with one of {', '.join(RESULT_FORMATS)}")
    return (CsvWriter if suffix == ".csv" else JsonlWriter)(path, labels)


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
        return {"images": self.images, "frames": self.frames, "faces": sum(self.per_emotion.values()),
                "per_emotion": dict(self.per_emotion.most_common()),
                "videos": {v: self.time_shares(v) for v in self.videos},
                "failed": [{"source": s, "error": e} for s, e in self.failed], "notes": list(self.notes)}

    def lines(self) -> list[str]:
        d = self.to_dict()
        out = [f"{d['frames']} frame(s) analysed ({d['images']} still image(s), {len(self.videos)} video "
               f"stream(s)): {d['faces']} face(s)"]
        if d["per_emotion"]:
            out.append("faces per emotion: " + ", ".join(f"{k} {v}" for k, v in d["per_emotion"].items()))
        for video, s in d["videos"].items():
            shares = ", ".join(f"{k} {v:.0%}" for k, v in s["emotions"].items()) or "no face"
            out.append(f"{video}: {s['seconds']:.1f} s, a face in {s['face_share']:.0%} of it; "
                       f"time per emotion: {shares}")
        out += [f"note: {n}" for n in self.notes]
        return out

    def failure_lines(self) -> list[str]:
        """One line per failed input, naming it (for stderr)."""
        return [msg if src in msg else f"{src}: {msg}" for src, msg in self.failed]


_COLORS = {"angry": (230, 40, 40), "disgust": (120, 170, 40), "fear": (150, 60, 200), "happy": (250, 200, 0),
           "sad": (40, 110, 230), "surprise": (250, 130, 0), "neutral": (200, 200, 200),
           "contempt": (160, 100, 60), UNCERTAIN: (255, 255, 255)}


def blur_faces(rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """Pixelate each face (plus a margin for hair and ears) into ~8x8 blocks: unlike a
    Gaussian blur, what is left carries too little detail to recognise or to de-blur."""
    import cv2

    out = rgb.copy()
    h, w = out.shape[:2]
    for box in boxes:
        x0, y0, x1, y1 = expand_box(box, 0.3, w, h, square=False)
        region = out[y0:y1, x0:x1]
        small = cv2.resize(region, (8, 8), interpolation=cv2.INTER_AREA)
        out[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    return out


def draw_faces(rgb: np.ndarray, faces: list[FaceResult], blur: bool = False) -> np.ndarray:
    """A copy of the RGB frame with each face boxed and labelled ('happy 0.91 #2')."""
    import cv2

    out = blur_faces(rgb, [f.box for f in faces]) if blur else rgb.copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)
    thick = max(1, round(max(out.shape[:2]) / 400))
    for f in faces:
        x0, y0, x1, y1 = f.box
        color = _COLORS.get(f.label, (0, 255, 0))
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), color, thick)
        text = f"{f.label} {f.score:.2f}" + ("" if f.track is None else f" #{f.track}")
        scale = max(0.4, (x1 - x0) / 220)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y0 - base - 2 if y0 - th - base - 2 >= 0 else y1 + th + 2
        cv2.rectangle(out, (x0, ty - th - 2), (x0 + tw + 2, ty + base), color, -1)
        cv2.putText(out, text, (x0 + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return out


class AnnotatedOutput:
    """Writes annotated copies into a folder: a JPEG per still image, a video per stream.

    Only created when the user asks (``--save-annotated``); each file appears atomically
    (a still image is renamed into place; a video keeps a ``.partial`` name until closed).
    """

    def __init__(self, directory: str | Path, blur: bool = False, fps: float = 15.0):
        self.dir, self.blur, self.default_fps = Path(directory), blur, fps
        self.dir.mkdir(parents=True, exist_ok=True)
        self._videos: dict[str, tuple[Any, Path, Path]] = {}
        self.written: list[Path] = []
        self._taken: set[Path] = set()

    def image(self, name: str, rgb: np.ndarray, faces: list[FaceResult]) -> Path:
        import cv2

        from ..utils.io import atomic_write

        suffix = Path(name).suffix.lower()
        ext = suffix if suffix in _ENCODABLE else ".png"  # the input's own format where OpenCV writes it
        dst = self._unique(self.dir / Path(name).with_suffix(ext))
        params = [cv2.IMWRITE_JPEG_QUALITY, 90] if ext in (".jpg", ".jpeg") else []
        ok, buf = cv2.imencode(ext, cv2.cvtColor(draw_faces(rgb, faces, self.blur), cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise DataError(f"{dst}: could not encode the annotated image")
        atomic_write(dst, lambda p: p.write_bytes(buf.tobytes()))
        self.written.append(dst)
        return dst

    def _unique(self, dst: Path) -> Path:
        """Two inputs never share an annotated copy: a name taken in this run gets ``-2``, ``-3``..."""
        n, candidate = 1, dst
        while candidate in self._taken:
            n += 1
            candidate = dst.with_name(f"{dst.stem}-{n}{dst.suffix}")
        self._taken.add(candidate)
        return candidate

    def frame(self, name: str, rgb: np.ndarray, faces: list[FaceResult], fps: float | None) -> None:
        import cv2

        if name not in self._videos:
            dst = self._unique(self.dir / Path(name).with_suffix(".mp4"))
            tmp = dst.with_name(f".{dst.stem}.partial.mp4")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            h, w = rgb.shape[:2]
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps or self.default_fps, (w, h))
            if not writer.isOpened():
                raise DataError(f"{dst}: cannot write an annotated video (no mp4v encoder)")
            self._videos[name] = (writer, tmp, dst)
        self._videos[name][0].write(cv2.cvtColor(draw_faces(rgb, faces, self.blur), cv2.COLOR_RGB2BGR))

    def close_video(self, name: str) -> None:
        if name in self._videos:
            writer, tmp, dst = self._videos.pop(name)
            writer.release()
            tmp.replace(dst)
            self.written.append(dst)

    def close(self) -> None:
        for name in list(self._videos):
            self.close_video(name)
