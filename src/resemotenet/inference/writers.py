"""Streaming result files, JSONL or CSV by extension: one row per face (and one per image
without a face), flushed as it is written, so a run over hours of video that dies still leaves
every row written so far valid."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, TextIO

from ..utils.errors import ConfigError, DataError, OutputError
from .results import FaceResult, no_face_dict

RESULT_FORMATS = (".jsonl", ".csv")


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
            raise OutputError(
                f"{self.path}: could not write results ({exc.strerror or exc}); "
                f"the {self.rows} row(s) before it are intact"
            ) from exc

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
        self._f.write(jsonl_row(face.to_dict()))

    def _empty(self, source: str, frame: int, timestamp: float | None) -> None:
        self._f.write(json.dumps(no_face_dict(source, frame, timestamp)) + "\n")


def csv_header(labels: tuple[str, ...] | list[str]) -> list[str]:
    """The CSV columns: one row per face, a column per label (``p_<label>``), and the status."""
    return (
        ["source", "frame", "timestamp", "x0", "y0", "x1", "y1", "label", "score", "track", "top2"]
        + [f"p_{n}" for n in labels]
        + ["status"]
    )


def csv_row(d: dict[str, Any], labels: tuple[str, ...] | list[str]) -> list[Any]:
    """One face (``FaceResult.to_dict()``, or the service's JSON of it) as a CSV row."""
    top2 = "" if d.get("top2") is None else "|".join(f"{n}:{p:.4f}" for n, p in d["top2"])
    return (
        [
            d["source"],
            d["frame"],
            "" if d["timestamp"] is None else d["timestamp"],
            *d["box"],
            d["label"],
            d["score"],
            "" if d.get("track") is None else d["track"],
            top2,
        ]
        + [d["probabilities"].get(n, "") for n in labels]
        + ["face"]
    )


def jsonl_row(d: dict[str, Any]) -> str:
    return json.dumps({**d, "status": "face"}) + "\n"


class CsvWriter(ResultWriter):
    """One row per face; a column per label (``p_<label>``) so spreadsheets need no JSON."""

    def _start(self) -> None:
        self._csv = csv.writer(self._f)
        self._csv.writerow(csv_header(self.labels))
        self._f.flush()

    def _empty(self, source: str, frame: int, timestamp: float | None) -> None:
        self._csv.writerow(
            [source, frame, "" if timestamp is None else timestamp] + [""] * (8 + len(self.labels)) + ["no_face"]
        )

    def _row(self, face: FaceResult) -> None:
        self._csv.writerow(csv_row(face.to_dict(), self.labels))


def open_writer(path: str | Path, labels: tuple[str, ...] | list[str]) -> ResultWriter:
    """A streaming writer chosen by the file's extension (.jsonl or .csv)."""
    suffix = Path(path).suffix.lower()
    if suffix not in RESULT_FORMATS:
        hint = (
            f" (JSON Lines, one object per face, streamed so a stopped run keeps its rows: {Path(path).with_suffix('.jsonl')})"
            if suffix == ".json"
            else ""
        )
        raise ConfigError(f"{path}: results file must end with one of {', '.join(RESULT_FORMATS)}{hint}")
    return (CsvWriter if suffix == ".csv" else JsonlWriter)(path, labels)
