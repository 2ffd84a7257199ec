"""Batch inference on Ray Data: every input's rows exactly once (also when an actor is killed
mid-job), resume skips finished items, bad inputs are listed and the job goes on.

One local Ray instance (2 CPUs, as on the smallest CI machine) serves the whole module.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from resemotenet.cli import main
from resemotenet.inference.sources import demo_image
from resemotenet.scale import plan, run_batch, size_actors
from resemotenet.scale.worker import ItemWorker
from resemotenet.utils.errors import ConfigError, MissingExtraError

FRAMES = 20
IMAGES = 5


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """5 photos with one face, one without a face, a truncated JPEG, a 20-frame video, a broken video."""
    import cv2

    root = tmp_path_factory.mktemp("scale")
    photo = cv2.resize(cv2.imread(str(demo_image())), (256, 256))
    folder = root / "photos"
    folder.mkdir()
    for i in range(IMAGES):
        cv2.imwrite(str(folder / f"p{i}.jpg"), photo)
    cv2.imwrite(str(folder / "empty.png"), np.full((120, 160, 3), 90, np.uint8))
    (folder / "broken.jpg").write_bytes((folder / "p0.jpg").read_bytes()[:200])
    video = root / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    frame = cv2.resize(photo, (240, 240))
    for i in range(FRAMES):
        canvas = np.full((240, 320, 3), 40, np.uint8)
        canvas[:, 40 + i % 3 : 280 + i % 3] = frame  # a face that moves a little
        writer.write(canvas)
    writer.release()
    broken = root / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    return {"folder": folder, "video": video, "broken_video": broken, "root": root}


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed (pip install 'resemotenet[ray]')")
    pytest.importorskip("pyarrow", reason="the [ray] extra is not installed (pip install 'resemotenet[ray]')")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # actors run this file's worker class
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield ray
    ray.shutdown()


def _job(inputs, output: Path, **kw):
    sources = [inputs["folder"], inputs["video"], inputs["broken_video"]]
    return run_batch(sources, output, images_per_item=2, frames_per_item=8, **kw)


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines()]


def _check_exactly_once(rows: list[dict], inputs) -> None:
    keys = Counter((Path(r["source"]).name, r["frame"]) for r in rows)
    photos = {(f"p{i}.jpg", 0) for i in range(IMAGES)}
    video = {("clip.mp4", f) for f in range(FRAMES)}
    assert set(keys) == photos | video | {("empty.png", 0)}, sorted(set(keys) ^ (photos | video))
    assert all(n == 1 for n in keys.values()), [k for k, n in keys.items() if n > 1]
    assert {r["status"] for r in rows if Path(r["source"]).name == "empty.png"} == {"no_face"}


# -- without Ray ---------------------------------------------------------------------------------
def test_actors_leave_room_for_ray_datas_own_tasks():
    assert size_actors({"CPU": 2.0}, 2) == (2, 0.75, 0.0)  # 2 x 1 CPU would leave none: the job could stall
    assert size_actors({"CPU": 2.0}, 1) == (1, 1.0, 0.0)
    assert size_actors({"CPU": 2.0}) == (2, 0.75, 0.0)
    assert size_actors({"CPU": 32.0, "GPU": 2.0}) == (2, 1.0, 1.0)
    with pytest.raises(ConfigError):
        size_actors({"CPU": 2.0}, 0)


def test_a_long_video_spreads_over_items_with_stable_keys(inputs):
    items = plan([inputs["video"], inputs["folder"], inputs["broken_video"]], images_per_item=3, frames_per_item=8)
    ranges = [(it.start, it.stop) for it in items if it.kind == "video" and not it.error]
    assert ranges == [(0, 8), (8, 16), (16, 20)]
    assert [len(it.paths) for it in items if it.kind == "images"] == [3, 3, 1]
    assert [it.error is not None for it in items if it.kind == "video"] == [False] * 3 + [True]
    again = plan([inputs["video"], inputs["folder"], inputs["broken_video"]], images_per_item=3, frames_per_item=8)
    assert [it.key for it in items] == [it.key for it in again] and len({it.key for it in items}) == len(items)


def test_ray_not_installed_is_a_one_line_hint(inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"resemotenet\[ray\]"):
        _job(inputs, tmp_path / "r.jsonl")
    code = main(["predict", str(inputs["video"]), "--runner", "ray", "-o", str(tmp_path / "c.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "pip install 'resemotenet[ray]'" in err


def test_unreachable_address_fails_fast_in_one_line(inputs, tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    code = main(
        [
            "predict",
            str(inputs["video"]),
            "--runner",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
            "-o",
            str(tmp_path / "r.parquet"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "cannot reach a Ray cluster" in err
    assert time.monotonic() - started < 15


# -- a local Ray job -----------------------------------------------------------------------------
def test_job_writes_every_row_once_and_lists_bad_inputs(ray_session, inputs, tmp_path):
    started = time.monotonic()
    s = _job(inputs, tmp_path / "out.parquet", workers=2)
    assert (
        time.monotonic() - started < 300
    )  # finishes (no starved stage) on 2 CPUs with 2 actors: a hang guard, not a timing
    rows = _rows(tmp_path / "out.parquet")
    _check_exactly_once(rows, inputs)
    face = next(r for r in rows if r["status"] == "face")
    assert {"x0", "y1", "label", "score", "uncertain", "timestamp", "p_happy"} <= set(face)
    assert abs(sum(v for k, v in face.items() if k.startswith("p_")) - 1) < 1e-3
    assert s["faces"] == IMAGES + FRAMES and s["no_face"] == 1 and s["skipped"] == 0
    errors = [json.loads(x) for x in Path(s["errors_file"]).read_text().splitlines()]
    assert sorted(Path(e["source"]).name for e in errors) == ["broken.jpg", "broken.mp4"]
    assert all(e["error"] for e in errors)


def test_rerun_resumes_and_an_existing_output_is_refused(ray_session, inputs, tmp_path):
    out = tmp_path / "out.jsonl"
    _job(inputs, out)
    first = out.read_text()
    parts = sorted((tmp_path / "out.jsonl.parts").glob("*.json"))
    again = _job(inputs, out)  # nothing left to do: Ray is not even asked
    assert again["skipped"] == len(parts) - 1 and again["run_s"] == 0 and out.read_text() == first
    video_part = next(p for p in parts if p.name != "job.json" and '"frame": 12' in p.read_text())
    video_part.unlink()  # as if the job had died before this item
    redo = _job(inputs, out)
    assert redo["skipped"] == len(parts) - 2
    _check_exactly_once(_rows(out), inputs)
    with pytest.raises(ConfigError, match="other settings"):
        _job(inputs, out, stride=2)
    with pytest.raises(ConfigError, match="already exists"):
        _job(inputs, out, resume=False)
    plain = tmp_path / "plain.csv"
    plain.write_text("someone else's results\n")
    with pytest.raises(ConfigError, match="already exists"):
        _job(inputs, plain)
    one = run_batch([inputs["folder"] / "p1.jpg"], plain, force=True)
    assert one["faces"] == 1 and plain.read_text().startswith("source,frame,timestamp,x0")


class SlowWorker(ItemWorker):
    """Writes its process id where the test can find it and takes its time over each item."""

    PIDS = ""

    def __call__(self, batch):
        Path(self.PIDS, str(os.getpid())).touch()
        time.sleep(0.5)
        return super().__call__(batch)


def test_a_killed_actor_loses_nothing_and_repeats_nothing(ray_session, inputs, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    worker = type("Slow", (SlowWorker,), {"PIDS": str(pids)})
    result: dict = {}
    job = threading.Thread(target=lambda: result.update(_job(inputs, tmp_path / "k.parquet", workers=2, worker=worker)))
    job.start()
    deadline = time.monotonic() + 240  # actors start slowly on two busy cores
    while not any(pids.iterdir()) and time.monotonic() < deadline and job.is_alive():
        time.sleep(0.05)
    started = list(pids.iterdir())
    assert started, "no actor started within 240 s" if job.is_alive() else "the job ended before an actor started"
    victim = int(started[0].name)
    os.kill(victim, signal.SIGKILL)  # mid-item: the actor sleeps in __call__
    job.join(timeout=300)
    assert not job.is_alive(), "the job did not finish after a worker was killed"
    assert result, "the job raised (see the thread's traceback above)"
    _check_exactly_once(_rows(tmp_path / "k.parquet"), inputs)
    seen = {int(p.name) for p in pids.iterdir()}
    assert len(seen - {victim}) >= 1  # the work went on in another (restarted) actor
    assert result["unfinished"] == 0 and result["faces"] == IMAGES + FRAMES
