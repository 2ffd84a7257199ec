"""Work items of a batch job and the part files that make its output idempotent.

Inputs (image files, folders, video files) are expanded into work items, each with a stable key
made from what it covers: a group of images, or one range of a video's frames, so a long video
spreads over many workers. Each finished item is written atomically as its own part file in
``<output>.parts/``; the results file is assembled from the parts in item order. A rerun of the
same job skips every item whose part exists (resume), and an item done twice (a worker killed
after it finished, its task retried) rewrites the same part: every row appears exactly once.
No Ray here: this module is plain Python, so planning and assembly are testable without it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..imaging import VIDEO_EXTS, media_files
from ..inference.results import flat_columns, flat_row, no_face_dict
from ..inference.writers import csv_header, csv_row
from ..utils.errors import ConfigError, OutputError, OutputExistsError
from ..utils.io import atomic_write, atomic_write_text, exists_message

OUTPUT_FORMATS = (".parquet", ".jsonl", ".csv")


@dataclass(frozen=True)
class WorkItem:
    """``kind`` 'images': ``paths`` are still images; 'video': frames [start, stop) of ``paths[0]``
    (``stop`` None: to the end). ``error``: the input could not even be planned (e.g. a video
    that does not open); such an item is reported, never run."""

    kind: str
    paths: tuple[str, ...]
    start: int = 0
    stop: int | None = None
    error: str | None = None

    @property
    def key(self) -> str:
        text = json.dumps([self.kind, list(self.paths), self.start, self.stop])
        return hashlib.sha1(text.encode()).hexdigest()[:20]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkItem:
        d = json.loads(text)
        return cls(d["kind"], tuple(d["paths"]), d["start"], d["stop"], d.get("error"))


def _video_frames(path: Path) -> tuple[int, str | None]:
    """(declared frame count, error); 0 when the header does not say."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0, f"{path}: cannot open as a video (unknown format, damaged, or missing codec)"
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)), None
    finally:
        cap.release()


def plan(sources: Iterable[str | Path], images_per_item: int = 16, frames_per_item: int = 300) -> list[WorkItem]:
    """Work items for image files, folders (recursive, sorted, hidden files skipped) and videos.

    The same inputs give the same items and keys, which is what lets a rerun resume.
    """
    if images_per_item < 1 or frames_per_item < 1:
        raise ConfigError("images_per_item and frames_per_item must be >= 1")
    images: list[str] = []
    items: list[WorkItem] = []
    for src in sources:
        path = Path(src)
        if path.is_dir():  # its images, and each video in it as a video input (the one folder walk)
            found, videos = media_files(path)
            images += [str(p) for p in found]
            for video in videos:
                items += _video_items(video, frames_per_item)
        elif not path.exists():
            items.append(WorkItem("missing", (str(path),), error=f"{path}: no such file or folder"))
        elif path.suffix.lower() in VIDEO_EXTS:
            items += _video_items(path, frames_per_item)
        else:
            images.append(str(path))
    groups = [
        WorkItem("images", tuple(images[i : i + images_per_item])) for i in range(0, len(images), images_per_item)
    ]
    return groups + items


def _video_items(path: Path, frames_per_item: int) -> list[WorkItem]:
    declared, error = _video_frames(path)
    if error:
        return [WorkItem("video", (str(path),), error=error)]
    if declared == 0:  # no frame count in the header: one item reads the whole video
        return [WorkItem("video", (str(path),))]
    return [
        WorkItem("video", (str(path),), s, min(s + frames_per_item, declared))
        for s in range(0, declared, frames_per_item)
    ]


class Parts:
    """The ``<output>.parts/`` folder: ``job.json`` (the settings the parts were made with) and
    one ``<key>.json`` per finished item."""

    def __init__(self, output: str | Path):
        self.output = Path(output)
        self.dir = self.output.with_name(self.output.name + ".parts")

    def finished(self) -> int:
        """How many items have their part (0 when the folder is absent)."""
        return sum(1 for p in self.dir.glob("*.json") if p.name != "job.json") if self.dir.is_dir() else 0

    def check(self, force: bool, resume: bool) -> None:
        """``prepare``'s refusal alone, before any work (settings are compared in ``prepare``)."""
        job = self.dir / "job.json"
        if force or (job.is_file() and resume):
            return
        if self.output.exists() or (job.is_file() and self.finished()):
            raise OutputExistsError(exists_message(self.output if self.output.exists() else self.dir))

    def prepare(self, settings: dict[str, Any], force: bool, resume: bool) -> None:
        """Refuse to clobber a results file; start afresh (force) or continue (resume). A parts
        folder without a finished part (a job that failed to start) holds nothing to lose: it
        is replaced, whatever its settings."""
        job = self.dir / "job.json"
        if force or (job.is_file() and not self.finished() and not self.output.exists()):
            shutil.rmtree(self.dir, ignore_errors=True)
        elif job.is_file() and resume:
            made_with = json.loads(job.read_text())
            if made_with != settings:
                changed = sorted(k for k in set(settings) | set(made_with) if settings.get(k) != made_with.get(k))
                raise ConfigError(
                    f"{self.dir}: made with other settings ({', '.join(changed)}); use --force to start afresh"
                )
            return
        elif self.output.exists() or job.is_file():
            raise OutputExistsError(exists_message(self.output if self.output.exists() else self.dir))
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(job, json.dumps(settings, sort_keys=True))

    def discard_if_empty(self) -> None:
        """Remove the folder when no item finished (a failed start leaves nothing behind)."""
        if self.dir.is_dir() and not self.finished():
            shutil.rmtree(self.dir, ignore_errors=True)

    def done(self, item: WorkItem) -> bool:
        return (self.dir / f"{item.key}.json").is_file()

    def write(self, key: str, part: str) -> None:
        """Atomically: a part is there whole or not at all; written twice, it is the same part."""
        atomic_write_text(self.dir / f"{key}.json", part)

    def read(self, item: WorkItem) -> dict[str, Any]:
        return json.loads((self.dir / f"{item.key}.json").read_text())


def face_row(face: Any, uncertain_label: str | None = None) -> dict[str, Any]:
    """The one face row (``FaceResult.to_dict``) of a FaceResult."""
    return face.to_dict()


def no_face_row(source: str) -> dict[str, Any]:
    """The one row of an image without a face (``results.no_face_dict``)."""
    return no_face_dict(source)


def assemble(output: str | Path, parts: list[dict[str, Any]]) -> int:
    """Write the results file from the parts, in order, atomically; the number of rows."""
    rows = [r for p in parts for r in p["rows"]]
    labels = next((p["labels"] for p in parts if p.get("labels")), [])
    suffix = Path(output).suffix.lower()
    if suffix == ".jsonl":
        atomic_write_text(output, "".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".csv":
        atomic_write(output, lambda p: _write_csv(p, rows, labels))
    else:
        atomic_write(output, lambda p: _write_parquet(p, rows, labels))
    return len(rows)


def _write_csv(path: Path, rows: list[dict[str, Any]], labels: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(csv_header(labels))
        writer.writerows(csv_row(r, labels) for r in rows)


def _write_parquet(path: Path, rows: list[dict[str, Any]], labels: list[str]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        from ..utils.errors import extra_error

        raise extra_error("pyarrow", "ray", exc) from exc
    types = {
        "source": pa.string(),
        "frame": pa.int64(),
        "timestamp": pa.float64(),
        "label": pa.string(),
        "score": pa.float64(),
        "uncertain": pa.bool_(),
        "track": pa.int64(),
        "status": pa.string(),
        "top2": pa.string(),
    }
    cols = flat_columns(labels)
    fields = [pa.field(k, pa.float64() if k.startswith("p_") else types.get(k, pa.int32())) for k in cols]
    table = pa.Table.from_pylist([flat_row(r, labels) for r in rows], schema=pa.schema(fields))
    try:
        pq.write_table(table, str(path))
    except OSError as exc:
        raise OutputError(f"{path}: could not write Parquet ({exc})") from exc


def check_output(output: str | Path) -> None:
    if Path(output).suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"{output}: results file must end with one of {', '.join(OUTPUT_FORMATS)}")
