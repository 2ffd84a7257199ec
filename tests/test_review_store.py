"""The durable review store (``serve.review`` over ``serve.store``): crash states, restarts, held-out
parts by group, undo, clear refusals, the earlier file layout's migration, and a kill test."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from io import BytesIO

import numpy as np
import pytest

from resemotenet.inference.results import FaceResult
from resemotenet.serve.errors import Conflict, NotFound, Unprocessable
from resemotenet.serve.review import ReviewStore, review_budget
from resemotenet.utils.errors import ConfigError

LABELS = ("angry", "happy", "sad")


def face(track: int | None = None, p: float = 0.6) -> FaceResult:
    probs = {"angry": 1 - p - 0.1, "happy": p, "sad": 0.1}
    return FaceResult("x", 0, 0.0, (0, 0, 8, 8), "uncertain", p, probs, track, [("happy", p), ("angry", 0.3)])


def crop(i: int = 0) -> np.ndarray:
    return np.full((16, 16, 3), i % 255, np.uint8)


def files(store: ReviewStore) -> set[str]:
    return {f.stem for f in (store.root / "crops").iterdir()}


def rows(store: ReviewStore) -> set[str]:
    return {r[0] for r in store.db.query("SELECT id FROM items WHERE crop_missing = 0")}


@pytest.fixture
def store(tmp_path):
    s = ReviewStore(tmp_path / "review", LABELS, max_pending=100)
    yield s
    s.close()


def test_add_keeps_the_items_facts_and_a_restart_keeps_labels(tmp_path):
    s = ReviewStore(tmp_path, LABELS)
    a = s.add(crop(1), face(track=3), "job-1", reason="audit", group="job-1#track3", captured=1_700_000_000.5)
    b = s.add(crop(2), face(), "upload")
    item = s.pending()[0]
    assert item["id"] == a and item["reason"] == "audit" and item["group"] == "job-1#track3" and item["track"] == 3
    assert item["time"] == 1_700_000_000.5 and item["top2"] == [["happy", 0.6], ["angry", 0.3]]
    assert item["source"] == "job-1" and abs(sum(item["probabilities"].values()) - 1) < 1e-6
    assert s.image(a)[:3] == b"\xff\xd8\xff"
    assert s.label(a, "sad") == {"id": a, "label": "sad", "group": "job-1#track3", "part": "test"}
    assert s.label(b, "no_face")["label"] == "no_face"
    s.close()

    s = ReviewStore(tmp_path, LABELS)  # a restart: the same answers
    assert s.item(a)["label"] == "sad" and s.item(a)["part"] == "test" and s.item(b)["state"] == "no_face"
    c = s.counts()
    assert c["pending"] == 0 and c["labelled"] == {"sad": 1} and c["held_out"] == 1 and c["no_face"] == 1
    assert c["per_class"]["sad"] == {"train": 0, "test": 1} and c["per_class"]["happy"] == {"train": 0, "test": 0}
    assert c["by_reason"] == {"uncertain": 0, "audit": 1} and c["swept"]["orphan_crops"] == 0
    assert [(f.label, f.group, f.reason) for f in s.labelled("test")] == [("sad", "job-1#track3", "audit")]
    assert s.held_out() == [("sad", s.root / "crops" / f"{a}.jpg")]
    s.close()


def test_a_second_process_on_the_same_folder_is_refused(store):
    with pytest.raises(ConfigError, match="in use"):
        ReviewStore(store.root, LABELS)


def test_crop_without_row_and_temp_file_are_swept_on_start(tmp_path):
    s = ReviewStore(tmp_path, LABELS)
    kept = s.add(crop(), face(), "x")
    s.close()
    (tmp_path / "crops" / ("b" * 32 + ".jpg")).write_bytes(b"\xff\xd8\xff orphan")  # killed before its row
    (tmp_path / "crops" / (".tmp-" + "c" * 32 + ".jpg")).write_bytes(b"\xff\xd8")  # killed mid-write
    s = ReviewStore(tmp_path, LABELS)
    assert s.swept == {"orphan_crops": 1, "temp_files": 1, "missing_crops": 0}
    assert files(s) == rows(s) == {kept} and s.counts()["swept"]["orphan_crops"] == 1
    s.close()


def test_row_without_crop_leaves_the_queue_and_never_fails(tmp_path):
    s = ReviewStore(tmp_path, LABELS)
    gone, live = s.add(crop(1), face(), "x"), s.add(crop(2), face(), "x")
    s.close()
    (tmp_path / "crops" / f"{gone}.jpg").unlink()
    s = ReviewStore(tmp_path, LABELS)
    assert s.swept["missing_crops"] == 1 and s.counts()["missing_crops"] == 1
    assert [i["id"] for i in s.pending()] == [live] and s.pending_count() == 1
    with pytest.raises(NotFound, match="crop is gone"):
        s.label(gone, "happy")
    with pytest.raises(NotFound):
        s.image(gone)
    # a crop removed while the service runs: its image is a 404 and the item leaves the queue
    (tmp_path / "crops" / f"{live}.jpg").unlink()
    with pytest.raises(NotFound, match="gone"):
        s.image(live)
    assert s.pending() == [] and s.counts()["missing_crops"] == 2
    s.close()


KILL_BETWEEN = """
import os, signal, sys
import numpy as np
from resemotenet.inference.results import FaceResult
from resemotenet.serve import store
from resemotenet.serve.review import ReviewStore

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

s = ReviewStore(sys.argv[1], ("angry", "happy", "sad"))
store.Database.write = die  # the crop is on disk; the process dies before its row commits
f = FaceResult("x", 0, 0.0, (0, 0, 8, 8), "uncertain", 0.5, {"angry": 0.5, "happy": 0.3, "sad": 0.2}, None, None)
s.add(np.zeros((8, 8, 3), np.uint8), f, "x")
"""


def test_a_kill_between_crop_and_row_leaves_an_orphan_the_next_start_removes(tmp_path):
    s = ReviewStore(tmp_path, LABELS)
    kept = s.add(crop(), face(), "x")
    s.label(kept, "angry")
    s.close()
    proc = subprocess.run([sys.executable, "-c", KILL_BETWEEN, str(tmp_path)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert len(list((tmp_path / "crops").glob("*.jpg"))) == 2  # the orphan is there
    s = ReviewStore(tmp_path, LABELS)
    assert s.swept["orphan_crops"] == 1 and files(s) == rows(s) == {kept} and s.item(kept)["label"] == "angry"
    s.close()


def test_held_out_parts_are_by_group_and_never_split_a_group(store, tmp_path):
    rng = random.Random(0)
    ids = [(store.add(crop(i), face(), "cam", group=f"cam#track{i % 12}"), i % 12) for i in range(60)]
    for item, _ in rng.sample(ids, len(ids)):
        store.label(item, rng.choice(LABELS))
    parts = {}
    for item, g in ids:
        parts.setdefault(g, set()).add(store.item(item)["part"])
    assert all(len(p) == 1 for p in parts.values()), parts  # no group in both parts
    held = [g for g, p in parts.items() if p == {"test"}]
    assert len(held) == 3 and store.counts()["groups"] == {"train": 9, "test": 3}  # the 1st, 6th, 11th group
    test_groups = {f.group for f in store.labelled("test")}
    assert test_groups.isdisjoint({f.group for f in store.labelled("train")}) and len(test_groups) == 3

    # the dataset written from it: groups.csv, read by the folder: reader, keeps every group in one part
    from resemotenet.data.readers.folder import read

    out = store.materialize_folder(tmp_path / "site")
    assert out["faces"] == 60 and out["groups"] == 12 and out["test"] == sum(1 for f in store.labelled("test"))
    splits = read(tmp_path / "site")
    assert set(splits) == {"train", "test"}
    assert set(splits["train"].groups).isdisjoint(set(splits["test"].groups)) and len(set(splits["test"].groups)) == 3
    assert len(splits["train"].labels) + len(splits["test"].labels) == 60
    # written again (after one more label) it replaces itself; a foreign folder is refused
    store.undo(ids[0][0])
    assert store.materialize_folder(tmp_path / "site")["faces"] == 59
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not a dataset the review store wrote"):
        store.materialize_folder(tmp_path / "mine")
    names = zipfile.ZipFile(BytesIO(store.export_zip())).namelist()
    assert "groups.csv" in names and len(names) == 60  # 59 faces + groups.csv


def test_undo_puts_the_last_label_back_first_in_the_queue(store):
    a, b = store.add(crop(1), face(), "x", group="g1"), store.add(crop(2), face(), "x", group="g2")
    assert store.label(a, "happy")["part"] == "test"
    assert store.undo(a) == {"id": a, "undone": "happy", "state": "pending"}
    assert [i["id"] for i in store.pending()] == [a, b] and store.counts()["labelled"] == {}
    assert store.label(a, "sad")["part"] == "test"  # its group kept its part
    store.label(b, "no_face")
    assert store.undo(b)["undone"] == "no_face" and store.pending()[0]["id"] == b
    with pytest.raises(Conflict, match="no label to undo"):
        store.undo(b)
    with pytest.raises(NotFound):
        store.undo("f" * 32)


def test_labels_for_unknown_or_labelled_items_are_clear_errors(store):
    a = store.add(crop(), face(), "x")
    with pytest.raises(NotFound, match="no review item"):
        store.label("0" * 32, "happy")
    with pytest.raises(NotFound):
        store.label("../../etc/passwd", "happy")
    with pytest.raises(Unprocessable, match="not a class; valid: angry, happy, sad, no_face, skip"):
        store.label(a, "joyful")
    store.label(a, "happy")
    with pytest.raises(Conflict, match="already labelled 'happy'; undo it first") as err:
        store.label(a, "sad")
    assert err.value.status == 409 and "\n" not in str(err.value)
    assert store.item(a)["label"] == "happy"  # nothing changed


def test_skip_sends_an_item_to_the_back(store):
    a, b = store.add(crop(1), face(), "x"), store.add(crop(2), face(), "x")
    assert store.label(a, "skip") == {"id": a, "label": "skip"}
    assert [i["id"] for i in store.pending()] == [b, a]


def test_admission_full_queue_and_request_budget_are_kept(tmp_path):
    s = ReviewStore(tmp_path, LABELS, max_pending=3)
    with review_budget(2):
        got = [s.add(crop(i), face(), "x") for i in range(3)]
    assert [g is not None for g in got] == [True, True, False]
    assert s.add(crop(), face(), "x") and s.add(crop(), face(), "x") is None
    assert s.refused == {"request_cap": 1, "full": 1} and s.pending_count() == 3
    s.close()


def test_a_full_disk_refuses_the_face_and_leaves_nothing_half_written(store):
    kept = store.add(crop(), face(), "x")
    pages = store.db.scalar("PRAGMA page_count")
    store.db.query(f"PRAGMA max_page_count = {pages}")  # the database cannot grow: SQLITE_FULL
    big = FaceResult("x", 0, 0.0, (0, 0, 8, 8), "uncertain", 0.5, {f"c{i}": 0.001 for i in range(3000)}, None, None)
    results = [store.add(crop(i), big, "x") for i in range(5)]
    assert None in results and store.refused["write_error"] >= 1
    assert files(store) == rows(store)  # no crop left without its row
    assert store.label(kept, "happy")["label"] == "happy"  # the queue keeps working


def test_migrates_the_file_layout_once_and_keeps_parts(tmp_path):
    ids = {k: c * 32 for k, c in (("p", "a"), ("broken", "b"), ("train", "c"), ("test", "d"), ("flat", "e"))}
    (tmp_path / "pending").mkdir()
    meta = {"id": ids["p"], "source": "upload", "time": 1_700_000_000.0, "score": 0.4, "top2": [["happy", 0.4]]}
    (tmp_path / "pending" / f"{ids['p']}.json").write_text(json.dumps(meta))
    (tmp_path / "pending" / f"{ids['p']}.jpg").write_bytes(b"\xff\xd8\xff pending")
    (tmp_path / "pending" / f"{ids['broken']}.json").write_text("{}")  # its crop was lost: dropped
    for part, label, key in (("train", "happy", "train"), ("test", "sad", "test")):
        (tmp_path / "labelled" / part / label).mkdir(parents=True)
        (tmp_path / "labelled" / part / label / f"{ids[key]}.jpg").write_bytes(b"\xff\xd8\xff " + key.encode())
    (tmp_path / "labelled" / "angry").mkdir()
    (tmp_path / "labelled" / "angry" / f"{ids['flat']}.jpg").write_bytes(b"\xff\xd8\xff flat")

    s = ReviewStore(tmp_path, LABELS)
    assert s.migrated == 4 and not (tmp_path / "pending").exists()
    # labelled/ is now the store's own dataset, written from the database, in the same places
    assert (tmp_path / "labelled" / ".resemotenet-review-dataset").is_file()
    assert (tmp_path / "labelled" / "train" / "happy" / f"{ids['train']}.jpg").read_bytes() == b"\xff\xd8\xff train"
    assert (tmp_path / "labelled" / "test" / "sad" / f"{ids['test']}.jpg").is_file()
    assert [i["id"] for i in s.pending()] == [ids["p"]] and s.pending()[0]["time"] == 1_700_000_000.0
    assert s.image(ids["p"]) == b"\xff\xd8\xff pending"
    assert (s.item(ids["train"])["label"], s.item(ids["train"])["part"]) == ("happy", "train")
    assert (s.item(ids["test"])["label"], s.item(ids["test"])["part"]) == ("sad", "test")
    assert s.item(ids["flat"])["label"] == "angry"
    assert files(s) == rows(s) == {ids[k] for k in ("p", "train", "test", "flat")}
    s.close()
    s = ReviewStore(tmp_path, LABELS)  # once: a second start moves nothing
    assert s.migrated == 0 and s.counts()["labelled"] == {"angry": 1, "happy": 1, "sad": 1}
    s.close()


def test_a_damaged_database_is_one_clear_error(tmp_path):
    (tmp_path / "review.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a usable review database"):
        ReviewStore(tmp_path, LABELS)
    (tmp_path / "review.sqlite3").unlink()
    ReviewStore(tmp_path, LABELS).close()  # the lock was released


FEEDER = """
import random, sys, time
import numpy as np
from resemotenet.inference.results import FaceResult
from resemotenet.serve.review import ReviewStore

root, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
s = ReviewStore(root, ("angry", "happy", "sad"), max_pending=10_000)
f = FaceResult("x", 0, 0.0, (0, 0, 8, 8), "uncertain", 0.5, {"angry": 0.5, "happy": 0.3, "sad": 0.2}, 1, None)
print("ready", flush=True)
while True:
    item = s.add(np.full((24, 24, 3), rng.randrange(255), np.uint8), f, "cam", group=f"g{rng.randrange(20)}")
    for p in s.pending(3):
        if rng.random() < 0.5:
            label = rng.choice(["angry", "happy", "sad", "no_face"])
            s.label(p["id"], label)
            print("label", p["id"], label, flush=True)  # acknowledged: it must survive any kill
"""


def test_sigkill_at_random_moments_loses_no_label_and_leaves_no_orphan(tmp_path):
    rng, acknowledged = random.Random(1), {}
    for n in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", FEEDER, str(tmp_path), str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()[-2000:]
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        for line in out.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "label":
                acknowledged[parts[1]] = parts[2]
    s = ReviewStore(tmp_path, LABELS)
    try:
        assert files(s) == rows(s)  # 0 orphans, 0 rows without their crop
        assert not list((tmp_path / "crops").glob(".tmp-*"))
        assert acknowledged, "the feeder labelled nothing"
        for item, label in acknowledged.items():
            got = s.item(item)
            assert (got["label"] if got["state"] == "labelled" else got["state"]) == label, (item, got)
        n_rows = s.db.scalar("SELECT COUNT(*) FROM items")
        assert n_rows >= len(acknowledged) and s.pending_count() + len(acknowledged) <= n_rows
    finally:
        s.close()
    with sqlite3.connect(tmp_path / "review.sqlite3") as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_to_review_records_capture_time_and_group(tmp_path):
    """The service's one policy passes each pick's reason, group and capture time to the store."""
    import threading
    from types import SimpleNamespace

    from resemotenet.inference.sampling import ReviewSampler
    from resemotenet.serve.service import Service

    store = ReviewStore(tmp_path, LABELS)
    fake = SimpleNamespace(review=store, sampler=ReviewSampler(audit_rate=0.0), _sampler_lock=threading.Lock())
    f = face(track=4)
    f.label = "uncertain"
    assert Service.to_review(fake, [f], [crop()], "job-abc", 1_700_000_123.0) == 1
    item = store.pending()[0]
    assert (item["group"], item["time"], item["reason"]) == ("job-abc#track4", 1_700_000_123.0, "uncertain")
    store.close()


def test_the_review_folders_labelled_dataset_follows_every_label_and_undo(tmp_path):
    from resemotenet.data.readers.folder import read

    s = ReviewStore(tmp_path, LABELS)
    ids = [s.add(crop(i), face(), "cam", group=f"g{i % 3}") for i in range(6)]
    for item, label in zip(ids, ["happy", "sad", "angry", "sad", "happy", "angry"], strict=True):
        s.label(item, label)
    labelled = tmp_path / "labelled"
    splits = read(labelled)  # a folder: dataset as it stands, groups from its groups.csv
    assert sum(len(x.labels) for x in splits.values()) == 6
    assert set(splits["test"].groups) == {"g0"} and set(splits["train"].groups) == {"g1", "g2"}
    s.undo(ids[0])  # g0's first face (test/happy): out of the folder, and its now empty class folder too
    assert not (labelled / "test" / "happy").exists() and len((labelled / "groups.csv").read_text().splitlines()) == 6
    assert sum(len(x.labels) for x in read(labelled).values()) == 5
    s.close()
    (labelled / "train" / "sad" / f"{ids[1]}.jpg").unlink()  # the folder is derived: a start rebuilds it
    s = ReviewStore(tmp_path, LABELS)
    assert (labelled / "train" / "sad" / f"{ids[1]}.jpg").is_file() and s.counts()["labelled"] == {
        "angry": 2,
        "happy": 1,
        "sad": 2,
    }
    s.close()
