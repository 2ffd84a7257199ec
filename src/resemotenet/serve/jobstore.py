"""A job's results on disk, so they outlive the process and hold no row in memory:
``DIR/<id>.jsonl`` (one face row per line, the ``predict`` command's JSONL, appended and flushed
frame by frame) and ``DIR/<id>.json`` (its state and counts, replaced atomically).

A row the service has written is in the file whatever happens to the process afterwards (each
frame's rows are flushed, and synced at least every ``SYNC_EVERY_S``); a kill mid-line leaves a
torn last line that readers skip and the next start cuts off. A job that was running when the
process died is listed as ``interrupted`` with the rows it had.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..inference.writers import csv_header, csv_row, jsonl_row
from .errors import Unavailable

SYNC_EVERY_S = 1.0
RUNNING_STATES = ("running", "reconnecting")


class JobFiles:
    """Reads (and, for a running job, writes) one job's two files."""

    def __init__(self, directory: Path, job_id: str):
        self.id = job_id
        self.results, self.meta_path = directory / f"{job_id}.jsonl", directory / f"{job_id}.json"
        self._out: io.BufferedWriter | None = None
        self._synced = 0.0

    # ---- writing (the job's own thread) ----------------------------------------------------------

    def open(self) -> None:
        try:
            self._out = open(self.results, "ab")  # noqa: SIM115 - open for the job's lifetime
        except OSError as exc:
            raise Unavailable(f"cannot write job results ({exc.strerror or exc})") from None

    def append(self, rows: list[dict[str, Any]]) -> None:
        """One frame's rows: all of them reach the file, or none (a failed write is cut back)."""
        if self._out is None or not rows:
            return
        start = self._out.tell()
        try:
            self._out.write("".join(jsonl_row(r) for r in rows).encode("utf-8"))
            self._out.flush()
            if time.monotonic() - self._synced >= SYNC_EVERY_S:
                os.fsync(self._out.fileno())
                self._synced = time.monotonic()
        except OSError as exc:
            try:
                self._out.truncate(start)
            except OSError:
                pass  # the reader skips a torn last line; the next start cuts it off
            raise Unavailable(f"cannot write the job's results ({exc.strerror or exc})") from None

    def close(self) -> None:
        if self._out is not None:
            try:
                self._out.flush()
                os.fsync(self._out.fileno())
            except OSError:
                pass
            self._out.close()
            self._out = None

    def save(self, meta: dict[str, Any]) -> None:
        """The state and counts, replaced whole (temporary file, then rename)."""
        tmp = self.meta_path.with_suffix(".json.tmp")
        try:
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, self.meta_path)
        except OSError:
            tmp.unlink(missing_ok=True)  # the previous state stays; its rows are on disk regardless

    # ---- reading (any thread) --------------------------------------------------------------------

    def rows(self) -> Iterator[dict[str, Any]]:
        """The face rows written so far, in order; a torn last line is not a row."""
        try:
            f = self.results.open("rb")
        except FileNotFoundError:
            return
        with f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    def jsonl_chunks(self) -> Iterator[str]:
        for row in self.rows():
            yield jsonl_row(row)

    def csv_chunks(self, labels: tuple[str, ...]) -> Iterator[str]:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(csv_header(labels))
        for n, row in enumerate(self.rows(), start=1):
            w.writerow(csv_row(row, labels))
            if n % 1000 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    def timeline(self, window: float) -> list[dict[str, Any]]:
        """Emotion shares per ``window`` seconds: each label's share of the faces seen in it."""
        buckets: dict[int, Counter[str]] = {}
        for d in self.rows():
            if d.get("timestamp") is not None:
                buckets.setdefault(int(d["timestamp"] // window), Counter())[d["label"]] += 1
        out = []
        for k in sorted(buckets):
            c = buckets[k]
            n = sum(c.values())
            shares = {lab: round(v / n, 4) for lab, v in c.most_common()}
            out.append({"start": round(k * window, 3), "end": round((k + 1) * window, 3), "faces": n, "shares": shares})
        return out

    def repair(self) -> tuple[int, Counter[str]]:
        """After a crash: cut a torn last line off, and count the faces and labels the file holds."""
        labels: Counter[str] = Counter()
        good = 0
        try:
            with self.results.open("rb") as f:
                for line in f:
                    if not line.endswith(b"\n"):
                        break
                    good += len(line)
                    try:
                        labels[json.loads(line).get("label")] += 1
                    except ValueError:
                        continue
            if good < self.results.stat().st_size:
                os.truncate(self.results, good)
        except OSError:
            pass
        return sum(labels.values()), labels


class JobResults:
    """A job's results read from its files (``files``: its ``JobFiles``): the ``predict``
    command's JSONL and CSV layouts (``inference.writers``) and the emotion timeline."""

    files: JobFiles

    def jsonl(self) -> str:
        return "".join(self.files.jsonl_chunks())

    def csv(self, labels: tuple[str, ...]) -> str:
        return "".join(self.files.csv_chunks(labels))

    def timeline(self, window: float) -> list[dict[str, Any]]:
        """Emotion shares per ``window`` seconds: each label's share of the faces seen in it."""
        return self.files.timeline(window)


class StoredJob(JobResults):
    """A job of an earlier run (or one that ended in this one), as its files tell it."""

    def __init__(self, files: JobFiles, meta: dict[str, Any]):
        self.files, self.meta = files, meta
        self.id, self.started = files.id, float(meta.get("started") or 0.0)
        self.state = meta.get("state", "done")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.meta)

    def stop(self) -> None:
        pass  # nothing runs

    def wait(self, timeout: float | None = None) -> None:
        pass


def load_jobs(directory: Path) -> list[StoredJob]:
    """Every job the folder holds; one that was running when its process died becomes
    ``interrupted`` (its file repaired and its counts taken from the rows it kept)."""
    out = []
    for path in sorted(directory.glob("*.json")):
        try:
            meta = json.loads(path.read_text())
            job_id = str(meta["id"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a job's state file
        if job_id != path.stem:
            continue
        files = JobFiles(directory, job_id)
        if meta.get("state") in RUNNING_STATES:
            faces, labels = files.repair()
            meta.update(
                state="interrupted",
                ended=meta.get("updated") or path.stat().st_mtime,
                faces=faces,
                labels=dict(labels.most_common()),
                error="the service stopped while this job ran; its rows up to then are kept",
            )
            files.save(meta)
        out.append(StoredJob(files, meta))
    for tmp in directory.glob("*.json.tmp"):
        tmp.unlink(missing_ok=True)
    return out
