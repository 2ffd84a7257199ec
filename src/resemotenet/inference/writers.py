"""Streaming result files, JSONL or CSV by extension: one row per face (and one per image
without a face), flushed as it is written, so a run over hours of video that dies still leaves
every row written so far valid.

The rows go to a temporary file beside the results (``utils.io.temp_beside``), moved onto them
when the writer closes, also after an error (the rows before it are kept): an existing results
file is replaced only by a run that got as far as writing. ``append=True`` adds rows to an
existing file instead (a CSV must have the same columns)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, TextIO

from ..utils.errors import ConfigError, DataError, OutputError
from ..utils.io import commit_temp, temp_beside
from .results import FaceResult, flat_columns, flat_row, no_face_dict

RESULT_FORMATS = (".jsonl", ".csv")


class ResultWriter:
    """Base of the streaming writers: ``write(face)`` appends one row and flushes."""

    def __init__(self, path: str | Path, labels: tuple[str, ...] | list[str], append: bool = False):
        self.path, self.labels = Path(path), tuple(labels)
        self.rows = self.empty = 0
        self._tmp: Path | None = None
        appending = append and self.path.is_file() and self.path.stat().st_size > 0
        try:
            if appending:
                self._check_append()
                self._f: TextIO = open(self.path, "a", newline="", encoding="utf-8")
            else:
                self._tmp = temp_beside(self.path)
                self._f = open(self._tmp, "w", newline="", encoding="utf-8")
        except OSError as exc:
            if self._tmp is not None:
                self._tmp.unlink(missing_ok=True)
            raise DataError(f"{self.path}: cannot write results ({exc.strerror or exc})") from exc
        self._start(appending)

    @property
    def writing(self) -> Path:
        """The file the rows go to while the writer is open (the temporary file, or the appended one)."""
        return self._tmp or self.path

    def _start(self, appending: bool) -> None:
        pass

    def _check_append(self) -> None:
        """An appended file must end with a whole row (a newline is added otherwise)."""
        with open(self.path, "rb") as f:
            f.seek(-1, 2)
            whole = f.read(1) == b"\n"
        if not whole:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n")

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
        """Close the file and move the temporary file onto the results (rows so far included)."""
        if self._f.closed:
            return
        try:
            self._f.close()
            if self._tmp is not None:
                commit_temp(self._tmp, self.path)
        except OSError as exc:
            raise OutputError(f"{self.path}: could not write results ({exc.strerror or exc})") from exc
        finally:
            if self._tmp is not None:
                self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonlWriter(ResultWriter):
    def _row(self, face: FaceResult) -> None:
        self._f.write(jsonl_row(face.to_dict()))

    def _empty(self, source: str, frame: int, timestamp: float | None) -> None:
        self._f.write(jsonl_row(no_face_dict(source, frame, timestamp)))


def csv_header(labels: tuple[str, ...] | list[str]) -> list[str]:
    """The CSV columns (``results.flat_columns``): a row per face, a column per label, the status."""
    return flat_columns(labels)


def csv_row(d: dict[str, Any], labels: tuple[str, ...] | list[str]) -> list[Any]:
    """One face row (``FaceResult.to_dict()`` or ``no_face_dict``) as CSV cells ('' for missing)."""
    return ["" if v is None else v for v in flat_row(d, labels).values()]


def jsonl_row(d: dict[str, Any]) -> str:
    return json.dumps(d) + "\n"


class CsvWriter(ResultWriter):
    """One row per face; a column per label (``p_<label>``) so spreadsheets need no JSON."""

    def _start(self, appending: bool) -> None:
        self._csv = csv.writer(self._f)
        if not appending:
            self._csv.writerow(csv_header(self.labels))
            self._f.flush()

    def _check_append(self) -> None:
        with open(self.path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        if header != csv_header(self.labels):
            raise ConfigError(
                f"{self.path}: --append needs the same columns, and this file has others "
                "(another model's labels, or not a results file); use another -o or --force"
            )
        super()._check_append()

    def _empty(self, source: str, frame: int, timestamp: float | None) -> None:
        self._csv.writerow(csv_row(no_face_dict(source, frame, timestamp), self.labels))

    def _row(self, face: FaceResult) -> None:
        self._csv.writerow(csv_row(face.to_dict(), self.labels))


def check_format(path: str | Path) -> None:
    """A results file name must end with .jsonl or .csv (one line naming the choices)."""
    suffix = Path(path).suffix.lower()
    if suffix not in RESULT_FORMATS:
        hint = (
            f" (JSON Lines, one object per face, streamed so a stopped run keeps its rows: {Path(path).with_suffix('.jsonl')})"
            if suffix == ".json"
            else ""
        )
        raise ConfigError(f"{path}: results file must end with one of {', '.join(RESULT_FORMATS)}{hint}")


def open_writer(path: str | Path, labels: tuple[str, ...] | list[str], append: bool = False) -> ResultWriter:
    """A streaming writer chosen by the file's extension (.jsonl or .csv); ``append`` adds to an
    existing file. Whether an existing file may be replaced is the caller's check
    (``utils.io.check_output``)."""
    check_format(path)
    return (CsvWriter if Path(path).suffix.lower() == ".csv" else JsonlWriter)(path, labels, append)
