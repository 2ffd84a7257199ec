"""Job results on disk (``serve.jobs`` over ``serve.jobstore``): rows streamed frame by frame and
read back from the file, jobs of an earlier process listed (running ones as interrupted), a kill
loses no row the service had answered with, and a failed write stops the job with a clear error
and no torn row."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from resemotenet.inference.results import FaceResult, FrameResult
from resemotenet.serve.jobs import JobManager
from resemotenet.serve.jobstore import JobFiles

LABELS = ("angry", "happy")


class FakeSource:
    name, notes, gaps = "cam.mp4", [], []


def frame(i: int) -> FrameResult:
    label = "happy" if i % 3 else "angry"
    faces = [
        FaceResult("cam.mp4", i, i / 5, (0, 0, 8, 8), label, 0.9, {"angry": 0.1, "happy": 0.9}, track=t) for t in (1, 2)
    ]
    return FrameResult("cam.mp4", i, i / 5, faces)


def fake_service(frames, gate: threading.Event | None = None):
    def predict_source(source):
        for i in range(frames):
            if gate is not None and i == frames // 2:
                gate.wait(30)
            yield frame(i)

    return SimpleNamespace(
        predictor=SimpleNamespace(predict_source=predict_source),
        metrics=SimpleNamespace(count_faces=lambda labels: None),
        to_review=lambda *a, **k: 0,
    )


def test_rows_go_to_disk_as_they_come_and_a_restart_lists_the_job(tmp_path):
    gate = threading.Event()
    jobs = JobManager(fake_service(20, gate), directory=tmp_path)
    job = jobs._register(FakeSource(), "file", 1)
    deadline = time.monotonic() + 30
    while job.faces < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not hasattr(job, "rows")  # nothing kept in memory
    assert len((tmp_path / f"{job.id}.jsonl").read_text().splitlines()) == job.faces == 20  # half-way, on disk
    gate.set()
    job.wait(30)
    assert job.to_dict()["state"] == "done" and job.faces == 40
    rows = [json.loads(x) for x in job.jsonl().splitlines()]
    assert len(rows) == 40 and rows[0]["track"] == 1 and rows[-1]["frame"] == 19
    assert (
        job.csv(LABELS).splitlines()[0].startswith("source,frame,timestamp") and len(job.csv(LABELS).splitlines()) == 41
    )
    assert sum(w["faces"] for w in job.timeline(1.0)) == 40

    again = JobManager(fake_service(0), directory=tmp_path)  # a restarted service
    old = again.get(job.id)
    assert old.to_dict()["state"] == "done" and old.to_dict()["faces"] == 40 and old.to_dict()["source"] == "cam.mp4"
    assert old.jsonl() == job.jsonl() and old.timeline(1.0) == job.timeline(1.0)
    assert again.running() == 0


def test_a_job_running_when_the_process_died_is_interrupted_and_its_torn_row_cut(tmp_path):
    files = JobFiles(tmp_path, "abcdef0123456789")
    files.open()
    files.append([frame(0).faces[0].to_dict(), frame(1).faces[0].to_dict()])
    files.close()
    with files.results.open("ab") as f:
        f.write(b'{"source": "cam.mp4", "frame": 2, "lab')  # killed mid-line
    files.save({"id": files.id, "state": "running", "started": 1.0, "updated": 5.0, "faces": 1, "gaps": []})
    jobs = JobManager(fake_service(0), directory=tmp_path)
    d = jobs.get(files.id).to_dict()
    assert d["state"] == "interrupted" and d["faces"] == 2 and d["labels"] == {"angry": 1, "happy": 1}
    assert d["ended"] == 5.0 and "stopped while this job ran" in d["error"]
    assert files.results.read_bytes().endswith(b"}\n") and len(jobs.get(files.id).jsonl().splitlines()) == 2
    with pytest.raises(Exception, match="no job"):
        jobs.get("../../etc/passwd")


def test_a_failed_write_stops_the_job_with_a_clear_error_and_no_torn_row(tmp_path, monkeypatch):
    jobs = JobManager(fake_service(10), directory=tmp_path)
    real = JobFiles.append
    calls = {"n": 0}

    def append(self, rows):
        calls["n"] += 1
        if calls["n"] == 4:  # the disk fills while the 4th frame is written: half of it lands
            out = self._out
            self._out = SimpleNamespace(
                tell=out.tell,
                truncate=out.truncate,
                flush=out.flush,
                fileno=out.fileno,
                write=lambda data: (out.write(data[: len(data) // 2]), out.flush(), _full())[0],
            )
            try:
                return real(self, rows)
            finally:
                self._out = out
        return real(self, rows)

    monkeypatch.setattr(JobFiles, "append", append)
    job = jobs._register(FakeSource(), "file", 1)
    job.wait(30)
    d = job.to_dict()
    assert d["state"] == "failed" and "cannot write the job's results" in d["error"] and "frame 3" in d["error"]
    lines = (tmp_path / f"{job.id}.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == 6 and all(json.loads(x) for x in lines[:-1])


def _full():
    raise OSError(errno.ENOSPC, "No space left on device")


def test_the_temporary_folder_goes_with_the_service(tmp_path):
    jobs = JobManager(fake_service(3))
    folder = jobs.directory
    jobs._register(FakeSource(), "file", 1).wait(30)
    assert list(folder.glob("*.jsonl"))
    jobs.close()
    assert not folder.exists()


FEEDER = """
import sys, time
from types import SimpleNamespace
sys.path.insert(0, sys.argv[2])
from test_job_store import FakeSource, frame
from resemotenet.serve import jobs as jobs_module
from resemotenet.serve.jobs import JobManager

def predict_source(source):
    i = 0
    while True:
        yield frame(i)
        i += 1
        time.sleep(0.002)

service = SimpleNamespace(
    predictor=SimpleNamespace(predict_source=predict_source),
    metrics=SimpleNamespace(count_faces=lambda labels: None),
    to_review=lambda *a, **k: 0,
)
real_add = jobs_module.Job._add
def add(self, fr):
    real_add(self, fr)
    print("frame", self.id, fr.frame, flush=True)  # the service could have answered with these rows
jobs_module.Job._add = add
JobManager(service, directory=sys.argv[1])._register(FakeSource(), "stream", 1)
time.sleep(60)
"""


def test_sigkill_loses_no_answered_row_and_the_job_is_interrupted(tmp_path):
    here = os.path.dirname(__file__)
    acknowledged: dict[str, int] = {}
    for n in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", FEEDER, str(tmp_path), here], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        first = proc.stdout.readline()
        assert first.startswith(b"frame"), proc.stderr.read().decode()[-2000:]
        time.sleep(0.2 + 0.2 * n)
        os.kill(proc.pid, signal.SIGKILL)
        out = first + proc.communicate(timeout=60)[0]
        for line in out.decode().splitlines():
            _, job_id, i = line.split()
            acknowledged[job_id] = max(acknowledged.get(job_id, -1), int(i))
    jobs = JobManager(fake_service(0), directory=tmp_path)
    assert set(acknowledged) <= set(jobs.jobs) and len(acknowledged) == 3
    for job_id, last in acknowledged.items():
        job = jobs.get(job_id)
        rows = [json.loads(x) for x in job.jsonl().splitlines()]
        assert job.to_dict()["state"] == "interrupted"
        assert {r["frame"] for r in rows} >= set(range(last + 1))  # every answered frame's rows kept
        assert job.to_dict()["faces"] == len(rows)
