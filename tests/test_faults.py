"""benchmarks/faults.py's fast part: the service SIGKILLed at 3 random moments while a client
feeds it loses no acknowledged label or job row, duplicates none, and leaves no orphan or stuck
review item; the checks themselves count a loss when there is one. The Ray part (a worker and
the driver killed) needs over a minute, so it runs only when asked for."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from test_review_store import LABELS, crop, face, files, rows

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
pytest.importorskip("httpx", reason="httpx (the [test] extra) is not installed")

from resemotenet.serve.review import ReviewStore

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def faults():
    spec = importlib.util.spec_from_file_location("faults", BENCHMARKS / "faults.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["faults"] = module  # its dataclasses look their module up while they are made
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("faults", None)


def test_three_service_kills_lose_nothing_and_leave_nothing_stuck(faults, tmp_path):
    out = faults.service_faults(kills=3, seed=0, root=tmp_path, after=(0.5, 2.5))
    d = out.detail
    assert d["labels_acknowledged"] and d["job_rows_acknowledged"] and d["uploads_answered"], d  # something at stake
    assert (out.lost, out.duplicated, out.stuck, out.resumable) == (0, 0, 0, True), d
    assert d["jobs_interrupted"] >= 1 and d["jobs_not_listed"] == 0, d
    store = ReviewStore(tmp_path / "review", LABELS)  # opened as the service opens it: nothing left to sweep
    try:
        assert files(store) == rows(store) and store.swept == {"orphan_crops": 0, "temp_files": 0, "missing_crops": 0}
        assert store.pending_count() == 0  # the benchmark drained the queue: every item could be labelled
    finally:
        store.close()


def test_the_checks_count_a_lost_label_an_orphan_and_a_row_without_its_crop(faults, tmp_path):
    store = ReviewStore(tmp_path, LABELS)
    kept, gone = store.add(crop(1), face(), "x"), store.add(crop(2), face(), "x")
    store.label(kept, "happy")
    store.close()
    (tmp_path / "crops" / ("b" * 32 + ".jpg")).write_bytes(b"\xff\xd8\xff")  # a crop without a row
    (tmp_path / "crops" / f"{gone}.jpg").unlink()  # a row without its crop
    seen = faults.Seen(labels={kept: "happy"})
    assert faults.check_review(tmp_path, seen) == {
        "review_items": 2,
        "labels_lost": 0,
        "orphan_crops": 1,
        "rows_without_crop": 1,
    }
    seen.labels.update({kept: "sad", "c" * 32: "angry"})  # answered otherwise; answered but never stored
    assert faults.check_review(tmp_path, seen)["labels_lost"] == 2


def test_rows_compare_frame_by_frame(faults):
    clean = [{"source": "/in/img1.jpg", "frame": 0}] + [{"source": "/in/clip.mp4", "frame": f} for f in range(3)]
    assert faults.compare_rows(clean, clean) == (0, 0)
    assert faults.compare_rows(clean, clean[1:] + clean[-1:]) == (1, 1)  # one frame lost, another twice


def test_ray_worker_and_driver_kills_lose_nothing(faults, tmp_path):
    pytest.importorskip("ray", reason="the [ray] extra is not installed (pip install 'resemotenet[ray]')")
    pytest.importorskip("pyarrow", reason="the [ray] extra is not installed (pip install 'resemotenet[ray]')")
    if not os.environ.get("RESEMOTENET_FAULTS_RAY"):
        pytest.skip(
            "too slow for the fast part: a Ray job takes about 20 s on 2 cores, a clean run, a kill of each and "
            "the reruns over a minute; set RESEMOTENET_FAULTS_RAY=1, or run benchmarks/faults.py"
        )
    for out in faults.ray_part(1, 0, ["worker", "driver"], images=24, frames=30, root=tmp_path):
        assert out.kills == 1 and (out.lost, out.duplicated, out.resumable) == (0, 0, True), out.detail
