"""Video and camera jobs: a file inside the media folder, an uploaded clip, a stream URL or a
device index, each analysed in its own thread by the Predictor.

Results go to disk as they come (``jobstore``: one JSONL file per job, appended and flushed frame
by frame, and a small state file), never held in memory, so an hour-long camera job costs no more
memory than a minute's and a restarted service lists the jobs of the last one (those that were
running as ``interrupted``). They are served as JSONL or CSV and as per-time-window emotion
shares. The folder: ``--jobs-dir``, else ``jobs/`` in the review folder, else a private
temporary folder removed when the service stops. An uploaded clip is written to a private
temporary file only because OpenCV decodes from a path; the file is unlinked as soon as it is
opened, so it never outlives the open handle. Camera streams reconnect with back-off
(``streams.ReconnectingStream``) and report each gap.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from ..imaging import VIDEO_EXTS
from ..inference.sources import Source, VideoSource
from ..utils.errors import DataError
from .errors import Forbidden, NotFound, Unavailable, Unprocessable, UnsupportedMedia
from .imaging import sniff_video
from .jobstore import SYNC_EVERY_S, JobFiles, JobResults, StoredJob, load_jobs
from .streams import ReconnectingStream, check_stream_url, open_capture

MAX_JOBS = 4  # running at once; each takes a core's share of detection


class Job(JobResults):
    """A running job: its thread writes each frame's rows to its file (``jobstore.JobFiles``)."""

    def __init__(self, service: Any, source: Source, kind: str, stride: int, directory: Path):
        self.id, self.kind, self.source, self.service = uuid.uuid4().hex[:16], kind, source, service
        self.state, self.error = "running", None
        self.frames = self.faces = 0
        self.labels: Counter[str] = Counter()
        self.started, self.ended = time.time(), None
        self.stride = stride
        self.files = JobFiles(directory, self.id)
        self.files.open()
        self._saved = 0.0
        self.files.save(self.to_dict())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-{self.id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for fr in self.service.predictor.predict_source(self.source):
                self._add(fr)
                if self._stop.is_set():
                    break
            self.state = "stopped" if self._stop.is_set() else "done"
        except Unavailable as exc:  # its results cannot be written (a full disk): stop, say so
            self.state, self.error = "failed", f"{exc}; the rows up to frame {self.frames} are kept"
        except DataError as exc:
            self.state, self.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug must not pass for success; the job says what broke
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self.ended = time.time()
            self.files.close()
            self.files.save(self.to_dict())

    def _add(self, fr: Any) -> None:
        self.files.append([face.to_dict() for face in fr.faces])  # on disk before it is counted
        self.frames += 1
        for face in fr.faces:
            self.faces += 1
            self.labels[face.label] += 1
        if time.monotonic() - self._saved >= SYNC_EVERY_S:
            self._saved = time.monotonic()
            self.files.save(self.to_dict())
        self.service.metrics.count_faces([f.label for f in fr.faces])
        if fr.faces and fr.crops:  # the one review policy, as for uploads and the live page
            when = self.started + fr.timestamp if fr.timestamp is not None else time.time()
            self.service.to_review(fr.faces, fr.crops, f"job-{self.id}", when)

    def stop(self) -> None:
        self._stop.set()
        if isinstance(self.source, ReconnectingStream):
            self.source.stop()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def to_dict(self) -> dict[str, Any]:
        src = self.source
        declared = getattr(src, "declared", 0) or None
        read = getattr(src, "frames_read", None)
        state = "reconnecting" if self.state == "running" and getattr(src, "reconnecting", False) else self.state
        elapsed = (self.ended or time.time()) - self.started
        return {
            "id": self.id,
            "kind": self.kind,
            "source": src.name,
            "state": state,
            "error": self.error,
            "frames": self.frames,
            "faces": self.faces,
            "stride": self.stride,
            "progress": round(read / declared, 4) if declared and read is not None else None,
            "declared_frames": declared,
            "frames_per_s": round(self.frames / max(elapsed, 1e-6), 2),
            "labels": dict(self.labels.most_common()),
            "gaps": list(getattr(src, "gaps", [])),
            "notes": list(src.notes),
            "started": self.started,
            "ended": self.ended,
            "updated": time.time(),
        }


class JobManager:
    """The running jobs and those on disk. ``directory``: where results go (None: a private
    temporary folder, removed by ``close``); the jobs found there are listed from the start."""

    def __init__(
        self, service: Any, open_timeout_s: float = 5.0, give_up_s: float = 120.0, directory: str | Path | None = None
    ):
        self.service, self.open_timeout_s, self.give_up_s = service, open_timeout_s, give_up_s
        self._temporary = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="resemotenet-jobs-") if directory is None else directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, Job | StoredJob] = {j.id: j for j in load_jobs(self.directory)}
        self._lock = threading.Lock()

    def running(self) -> int:
        return sum(1 for j in self.jobs.values() if j.state == "running")

    def get(self, job_id: str) -> Job | StoredJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return job

    def _register(self, source: Source, kind: str, stride: int) -> Job:
        with self._lock:
            if self.running() >= MAX_JOBS:
                raise Unavailable(f"{MAX_JOBS} jobs are running; stop one first")
            job = Job(self.service, source, kind, stride, self.directory)
            self.jobs[job.id] = job
        return job

    def start(self, source: str | int, stride: int = 1, max_frames: int | None = None) -> Job:
        """Open the source (blocking: call it from a worker thread) and start the job."""
        if stride < 1 or (max_frames is not None and max_frames < 1):
            raise Unprocessable("stride and max_frames must be >= 1")
        if self.running() >= MAX_JOBS:
            raise Unavailable(f"{MAX_JOBS} jobs are running; stop one first")
        if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
            return self._stream(int(source), "device", stride, max_frames)
        if "://" in source:
            return self._stream(check_stream_url(source), "stream", stride, max_frames)
        path = self._media_path(source)
        shown = path.relative_to(Path(self.service.settings.media_dir).resolve()).as_posix()  # no server path shown
        try:
            src = VideoSource(path, stride, max_frames)
        except DataError as exc:
            raise Unprocessable(str(exc).replace(str(path), shown)) from None
        src.name = shown
        return self._register(src, "file", stride)

    def _stream(self, target: str | int, kind: str, stride: int, max_frames: int | None) -> Job:
        if isinstance(target, int) and not 0 <= target < 64:
            raise Unprocessable(f"device index must be 0..63, got {target}")
        try:
            cap = open_capture(target, self.open_timeout_s)
        except DataError as exc:
            raise Unprocessable(str(exc)) from exc
        if cap is None:
            what = f"camera {target}" if kind == "device" else "the stream"
            raise Unavailable(f"{what} did not answer within {self.open_timeout_s:.0f} s")
        src = ReconnectingStream(target, cap, stride, max_frames, self.open_timeout_s, give_up_s=self.give_up_s)
        return self._register(src, kind, stride)

    def _media_path(self, name: str) -> Path:
        """A path inside the media folder, checked after resolving links and '..'."""
        root = self.service.settings.media_dir
        if root is None:
            raise Forbidden("file jobs are off: start the service with --media-dir DIR")
        base = Path(root).resolve()
        path = (base / name).resolve()
        if not path.is_relative_to(base):
            raise Forbidden("the path leaves the media folder")
        if not path.is_file():
            raise NotFound(f"no file {name!r} in the media folder")
        if path.suffix.lower() not in VIDEO_EXTS:
            raise UnsupportedMedia(f"not a video file name ({', '.join(sorted(VIDEO_EXTS))})")
        return path

    def upload(self, data: bytes, name: str, stride: int = 1) -> Job:
        """A job on an uploaded clip (sniffed); its temporary file is gone once it is opened."""
        sniff_video(data)
        fd, tmp = tempfile.mkstemp(prefix="resemotenet-clip-", suffix=".bin")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                src = VideoSource(Path(tmp), stride)
            except DataError as exc:
                raise Unprocessable("the clip cannot be decoded (damaged, or a codec OpenCV lacks)") from exc
        finally:
            os.unlink(tmp)
        src.name = Path(name).name[:120] or "upload"
        return self._register(src, "upload", stride)

    def stop_all(self) -> None:
        for job in list(self.jobs.values()):
            job.stop()
        for job in list(self.jobs.values()):
            job.wait(5)

    def close(self) -> None:
        """Stop every job; a temporary results folder goes with the service."""
        self.stop_all()
        if self._temporary:
            shutil.rmtree(self.directory, ignore_errors=True)
