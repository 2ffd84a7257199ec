"""Faults at random moments: SIGKILL the service, a Ray worker and the Ray driver, and count what
was lost or repeated (not a test; ``tests/test_faults.py`` runs it small).

**Service.** ``resemotenet serve --model fast --review DIR --media-dir DIR`` runs as a child
process while a client feeds it: uploads to ``/v1/predict`` (varied photos of the shipped face, so
uncertain faces go to review), labels through the review API, and file jobs on a generated clip,
one after another. At a random moment the service is SIGKILLed (now and then while it starts),
then started again on the same folders; ``--kills`` times. What the client counts as
acknowledged is only what the service answered for: a label answered with 200, job rows returned
by ``/v1/jobs/ID/results``, a job reported ``done`` (all its faces). A last start checks them:
labels lost (the database lacks the answered label), job rows lost or duplicated, jobs not
listed (every job ever started must be, a running one as ``interrupted``), orphan crops (a crop
file without its row) and stuck items (a row without its crop, or a queued item whose image or
label request fails while the queue is drained).

**Ray.** ``resemotenet predict IMAGES CLIP --runner ray --model fast -o OUT.jsonl`` over a folder
of small generated images and a short clip. A clean run gives the reference rows and the times.
Then, for each of ``worker`` and ``driver``: the same command runs and, at a random moment, a Ray
worker (the process named ``ray::MapWorker(MapBatches(ItemWorker))``) or the driver itself is
SIGKILLed; the command is run again, unchanged, until it finishes (more kills may land on the
reruns while any are left); its output is compared with the clean run, frame by frame: rows lost,
rows duplicated, and every rerun accepted (a run that was not killed and still failed is a
refusal). Ray runs with its own temporary folder (``RAY_TMPDIR``), and whatever a killed run
leaves behind is ended by its process group, which this script started.

    nice -n 5 python benchmarks/faults.py [--kills 20] [--seed 0] [--parts service,worker,driver]
        [--output faults.json]

Target (issue 32): 20 kills each of the service, a Ray worker and the Ray driver: 0 rows lost,
0 duplicated, every job resumable by the same command.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CLIP = "clip.mp4"
ANSWERS = ("angry", "happy", "sad", "no_face")  # labels the client gives; 'skip' is no answer to keep
WORKER_NAME = b"ray::MapWorker(MapBatches(ItemWorker))"


@dataclass
class Outcome:
    """One row of the table; ``detail`` holds the counts behind it."""

    target: str
    kills: int
    lost: int
    duplicated: int
    stuck: int | None  # None: not a thing this target has (Ray keeps no queue)
    resumable: bool
    detail: dict[str, Any] = field(default_factory=dict)


# ---- shared helpers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def end_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of a process group this script started (``start_new_session``)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(30)


def face_photo(side: int = 128) -> np.ndarray:
    import cv2

    from resemotenet.inference.sources import demo_image

    return cv2.resize(cv2.imread(str(demo_image())), (side, side))


def write_clip(path: Path, frames: int, size: tuple[int, int] = (160, 120)) -> Path:
    """A clip of ``frames`` frames with the shipped face moving a little (one track)."""
    import cv2

    w, h = size
    face = face_photo(h)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
    for i in range(frames):
        canvas = np.full((h, w, 3), 40, np.uint8)
        x = (w - h) // 2 + (i % 7) - 3
        canvas[:, x : x + h] = face
        writer.write(canvas)
    writer.release()
    return path


def varied_photos(n: int, seed: int) -> list[bytes]:
    """JPEGs of the face, each shifted, scaled in brightness and noised differently: no two crops
    look alike to the review sampler's de-duplication, and many are uncertain to the model."""
    import cv2

    rng = np.random.default_rng(seed)
    face, out = face_photo(192), []
    for _ in range(n):
        canvas = np.full((256, 256, 3), int(rng.integers(20, 200)), np.int16)
        x, y = (int(v) for v in rng.integers(0, 64, 2))
        canvas[y : y + 192, x : x + 192] = face
        noisy = canvas * rng.uniform(0.35, 1.2) + rng.normal(0, rng.uniform(5, 50), canvas.shape)
        out.append(cv2.imencode(".jpg", np.clip(noisy, 0, 255).astype(np.uint8))[1].tobytes())
    return out


def row_key(row: dict[str, Any]) -> tuple:
    return row.get("frame"), row.get("track"), tuple(row.get("box") or ())


# ---- the service --------------------------------------------------------------------------------


@dataclass
class Seen:
    """What the service acknowledged across all its lives."""

    labels: dict[str, str] = field(default_factory=dict)  # item id -> the label answered with 200
    rows: dict[str, dict[tuple, str]] = field(default_factory=dict)  # job id -> row key -> row (JSON)
    done: dict[str, int] = field(default_factory=dict)  # job id -> faces of a job reported done
    uploads: int = 0
    statuses: Counter = field(default_factory=Counter)  # (what, status) of answers that were not 2xx


class Feeder:
    """One service life's client: three threads (uploads, labels, one file job at a time) that
    keep going until the service dies under them; only 2xx answers are recorded."""

    def __init__(self, url: str, seen: Seen, photos: list[bytes], seed: int):
        self.url, self.seen, self.photos, self.rng = url, seen, photos, random.Random(seed)
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(f,), daemon=True) for f in (self._upload, self._label, self._job)
        ]

    def __enter__(self) -> Feeder:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _loop(self, step: Any) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=10) as c:
            while not self.stop.is_set():
                try:
                    step(c)
                except (httpx.HTTPError, ValueError):
                    time.sleep(0.05)  # the service is gone (killed) or answered garbage mid-kill

    def _note(self, what: str, r: Any) -> bool:
        if r.status_code >= 300:
            self.seen.statuses[f"{what} {r.status_code}"] += 1
        return r.status_code < 300

    def _upload(self, c: Any) -> None:
        r = c.post("/v1/predict", content=self.rng.choice(self.photos))
        if self._note("predict", r):
            self.seen.uploads += 1
        elif r.status_code == 503:
            time.sleep(0.2)

    def _label(self, c: Any) -> None:
        items = c.get("/v1/review", params={"limit": 8}).json().get("items", [])
        for item in items:
            label = self.rng.choice(ANSWERS)
            if self._note("label", c.post(f"/v1/review/{item['id']}", json={"label": label})):
                self.seen.labels[item["id"]] = label
        time.sleep(0.05 if items else 0.2)

    def _job(self, c: Any) -> None:
        r = c.post("/v1/jobs", json={"source": CLIP})
        if not self._note("job", r):
            time.sleep(0.5)
            return
        job = r.json()["id"]
        self.seen.rows.setdefault(job, {})
        while not self.stop.is_set():
            state = c.get(f"/v1/jobs/{job}").json()
            self._fetch(c, job)  # after the state: a 'done' job's rows are all in this answer
            if state["state"] != "running":
                if state["state"] == "done":
                    self.seen.done[job] = int(state["faces"])
                else:
                    self.seen.statuses[f"job {state['state']}"] += 1
                return
            time.sleep(0.2)

    def _fetch(self, c: Any, job: str) -> None:
        r = c.get(f"/v1/jobs/{job}/results")
        if self._note("results", r):
            rows = self.seen.rows[job]
            for line in r.text.splitlines():
                row = json.loads(line)
                rows[row_key(row)] = json.dumps(row, sort_keys=True)


class Service:
    """``resemotenet serve`` as a child process on the benchmark's folders."""

    def __init__(self, root: Path):
        self.review, self.media = root / "review", root / "media"
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def spawn(self) -> None:
        port = free_port()
        cmd = [sys.executable, "-m", "resemotenet", "serve", "--model", "fast", "--port", str(port)]
        cmd += ["--review", str(self.review), "--media-dir", str(self.media)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"

    def ready(self, timeout: float = 180.0) -> float:
        """Seconds from now until ``/healthz`` answers; RuntimeError if it never does."""
        import httpx

        start = time.monotonic()
        while time.monotonic() - start < timeout and self.proc.poll() is None:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the service did not start (exit code {self.proc.poll()})")

    def kill(self) -> None:
        end_group(self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


def _get(url: str, path: str) -> Any:
    import httpx

    return httpx.get(url + path, params={"limit": 1}, timeout=30).json()


def service_life(
    svc: Service, seen: Seen, photos: list[bytes], rng: random.Random, after: tuple, early: float, startup_s: float
) -> dict:
    """Start the service, feed it, SIGKILL it at a random moment. With probability ``early`` the
    kill lands while it starts (uniform over ``startup_s``, its last start-up time: opening the
    store, its sweep, loading the model), else ``after`` seconds (uniform) once it answers."""
    svc.spawn()
    if rng.random() < early:
        time.sleep(rng.uniform(0.0, startup_s))
        svc.kill()
        return {"phase": "starting"}
    ready = svc.ready()
    swept = _get(svc.url, "/v1/review")["counts"]["swept"]  # what this start cleaned up after the last kill
    with Feeder(svc.url, seen, photos, rng.randrange(1 << 30)):
        time.sleep(rng.uniform(*after))
        svc.kill()
    return {"phase": "serving", "ready_s": round(ready, 1), "swept": swept}


def service_faults(
    kills: int = 20, seed: int = 0, root: Path | None = None, after: tuple = (0.2, 6.0), early: float = 0.15
) -> Outcome:
    """The service part: ``kills`` lives ended by SIGKILL, then one clean start that checks."""
    root = Path(root or tempfile.mkdtemp(prefix="faults-service-"))
    svc = Service(root)
    svc.media.mkdir(parents=True, exist_ok=True)
    write_clip(svc.media / CLIP, 150)
    rng, seen, photos = random.Random(seed), Seen(), varied_photos(96, seed)
    lives: list[dict] = []
    for _ in range(kills):
        startup_s = next((life["ready_s"] for life in reversed(lives) if "ready_s" in life), 4.0)
        lives.append(service_life(svc, seen, photos, rng, after, early, startup_s))
    svc.spawn()
    svc.ready()
    try:
        lives.append({"phase": "check", "swept": _get(svc.url, "/v1/review")["counts"]["swept"]})
        jobs = check_jobs(svc.url, seen)
        review = check_review(svc.review, seen)
        review["stuck_in_queue"] = drain_queue(svc.url)
    finally:
        svc.stop()
    swept = Counter()
    for life in lives:
        swept.update(life.get("swept", {}))
    detail = (
        {
            "kills_while_starting": sum(life["phase"] == "starting" for life in lives),
            "uploads_answered": seen.uploads,
            "labels_acknowledged": len(seen.labels),
            "swept_on_start": dict(swept),
            "refusals_seen": dict(seen.statuses),
        }
        | jobs
        | review
    )
    return Outcome(
        "service",
        kills,
        lost=review["labels_lost"] + jobs["job_rows_lost"],
        duplicated=jobs["job_rows_duplicated"],
        stuck=review["orphan_crops"] + review["rows_without_crop"] + review["stuck_in_queue"],
        resumable=jobs["jobs_not_listed"] == 0 and jobs["jobs_still_running"] == 0,
        detail=detail,
    )


def check_jobs(url: str, seen: Seen) -> dict[str, int]:
    """Every job started is listed (none still 'running'); its acknowledged rows are all there, once."""
    import httpx

    listed = {j["id"]: j for j in httpx.get(url + "/v1/jobs", timeout=30).json()["jobs"]}
    out = Counter(jobs=len(seen.rows), job_rows_acknowledged=sum(len(r) for r in seen.rows.values()))
    for job, acked in seen.rows.items():
        if job not in listed:
            out["jobs_not_listed"] += 1
            continue
        state = listed[job]["state"]
        out["jobs_still_running"] += state in ("running", "reconnecting")
        out["jobs_interrupted"] += state == "interrupted"
        out["jobs_done_listed_otherwise"] += job in seen.done and state != "done"
        rows = [json.loads(x) for x in httpx.get(f"{url}/v1/jobs/{job}/results", timeout=30).text.splitlines()]
        keys = Counter(row_key(r) for r in rows)
        out["job_rows_duplicated"] += sum(n - 1 for n in keys.values())
        missing = sum(1 for k in acked if k not in keys)  # rows it returned; a done job: all its faces
        out["job_rows_lost"] += max(missing, seen.done.get(job, 0) - len(keys))
        out["job_rows_changed"] += sum(
            1 for r in rows if row_key(r) in acked and json.dumps(r, sort_keys=True) != acked[row_key(r)]
        )
    for k in ("jobs_not_listed", "jobs_still_running", "jobs_interrupted", "job_rows_lost", "job_rows_duplicated"):
        out.setdefault(k, 0)
    return dict(out)


def check_review(folder: Path, seen: Seen) -> dict[str, int]:
    """Against the review database (read-only) and its crop files, after the restart's sweep:
    labels answered but lost, crop files without a row, rows without their crop."""
    db = sqlite3.connect(f"file:{folder / 'review.sqlite3'}?mode=ro", uri=True)
    try:
        rows = {r[0]: r[1:] for r in db.execute("SELECT id, state, label, crop_missing FROM items")}
    finally:
        db.close()
    crops = {p.name for p in (folder / "crops").iterdir()}
    lost = 0
    for item, label in seen.labels.items():
        state, got, _ = rows.get(item, (None, None, None))
        lost += (got if state == "labelled" else state) != label
    return {
        "review_items": len(rows),
        "labels_lost": lost,
        "orphan_crops": sum(1 for name in crops if not (name.endswith(".jpg") and name[:-4] in rows)),
        "rows_without_crop": sum(1 for i, r in rows.items() if r[2] or f"{i}.jpg" not in crops),
    }


def drain_queue(url: str, rounds: int = 200) -> int:
    """Fetch every queued crop and label it, as a reviewer would; the items that fail are stuck."""
    import httpx

    stuck: set[str] = set()
    with httpx.Client(base_url=url, timeout=30) as c:
        for _ in range(rounds):
            items = [i for i in c.get("/v1/review", params={"limit": 100}).json()["items"] if i["id"] not in stuck]
            if not items:
                break
            for item in items:
                image = c.get(f"/v1/review/{item['id']}/image")
                label = c.post(f"/v1/review/{item['id']}", json={"label": "no_face"})
                if image.status_code != 200 or label.status_code != 200:
                    stuck.add(item["id"])
    return len(stuck)


# ---- Ray ----------------------------------------------------------------------------------------


def ray_inputs(root: Path, images: int, frames: int) -> list[str]:
    """A folder of small images (every 8th without a face) and a short clip."""
    import cv2

    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    face = face_photo(96)
    for i in range(images):
        canvas = np.full((112, 112, 3), 60 + i % 100, np.uint8)
        if i % 8:
            canvas[i % 16 : i % 16 + 96, 8:104] = face
        cv2.imwrite(str(folder / f"img{i:04d}.jpg"), canvas)
    return [str(folder), str(write_clip(root / CLIP, frames))]


def ray_command(inputs: list[str], output: Path) -> list[str]:
    cmd = [sys.executable, "-m", "resemotenet", "predict", *inputs, "--runner", "ray", "--model", "fast"]
    return cmd + ["-o", str(output), "--no-progress"]


def session_pids(sid: int, name: bytes | None = None) -> list[int]:
    """Processes of session ``sid`` (one this script started); with ``name``, only those whose
    command line (Ray sets it to the actor's name) starts with it."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[3]) != sid:
                continue
            if name is None or Path(entry.path, "cmdline").read_bytes().startswith(name):
                out.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


@dataclass
class Attempt:
    rc: int
    kills: int
    seconds: float
    first_worker_s: float | None
    left_behind: int  # Ray processes still alive 5 s after the run ended (then ended by this script)
    error: str
    moments: list[float]  # seconds into the run of each kill


def ray_attempt(cmd: list[str], env: dict, log: Path, plan: dict | None, rng: random.Random) -> Attempt:
    """One run of the command. ``plan``: {'target': 'driver'|'worker', 'at': s, 'window': s, 'max': n}."""
    start = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    kills, first, moments = 0, None, []
    next_at = plan["at"] if plan and plan["target"] == "driver" else None  # a worker's: once one is seen
    while proc.poll() is None:
        now = time.monotonic() - start
        if first is None and session_pids(proc.pid, WORKER_NAME):
            first = now
            if plan and plan["target"] == "worker":
                next_at = now + rng.uniform(0, plan["window"])
        if plan and kills < plan["max"] and next_at is not None and now >= next_at:
            victims = [proc.pid] if plan["target"] == "driver" else session_pids(proc.pid, WORKER_NAME)
            if victims:
                os.kill(rng.choice(victims), signal.SIGKILL)
                kills, moments = kills + 1, moments + [round(now, 1)]
                next_at = now + rng.uniform(0, plan["window"]) if plan["target"] == "worker" else None
        time.sleep(0.05)
    seconds = time.monotonic() - start
    deadline = time.monotonic() + 5
    while session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = len(session_pids(proc.pid))
    end_group(proc)
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
    return Attempt(proc.returncode, kills, round(seconds, 1), first, left, tail[0][:300] if tail else "", moments)


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def compare_rows(clean: list[dict], final: list[dict]) -> tuple[int, int]:
    """(lost, duplicated): rows per (file, frame) fewer or more than the clean run's."""
    want = Counter((Path(r["source"]).name, r["frame"]) for r in clean)
    got = Counter((Path(r["source"]).name, r["frame"]) for r in final)
    return sum((want - got).values()), sum((got - want).values())


def ray_clean(root: Path, inputs: list[str], env: dict, rng: random.Random) -> dict[str, Any]:
    out = root / "clean.jsonl"
    a = ray_attempt(ray_command(inputs, out), env, root / "clean.log", None, rng)
    if a.rc != 0:
        raise RuntimeError(f"the clean Ray run failed: {a.error}")
    return {"rows": read_rows(out), "seconds": a.seconds, "worker_s": a.seconds - (a.first_worker_s or 0.0)}


def ray_round(target: str, kills: int, out: Path, ctx: dict, max_runs: int = 8) -> list[Attempt]:
    """The same command on a fresh output until it finishes: killed at random moments while
    ``kills`` remain (the driver: uniform over the clean run's length; a worker: uniform over the
    clean run's time with workers, from the first one seen, up to 2 a run); after ``max_runs``
    runs, or once the kills are spent, it runs unharmed (2 more tries at most)."""
    clean, rng, runs = ctx["clean"], ctx["rng"], []
    for n in range(max_runs + 2):
        left = kills - sum(a.kills for a in runs) if n < max_runs else 0
        plan = {
            "target": target,
            "at": rng.uniform(0, clean["seconds"]),
            "window": clean["worker_s"],
            "max": min(2, left),
        }
        runs.append(ray_attempt(ray_command(ctx["inputs"], out), ctx["env"], ctx["log"], plan if left else None, rng))
        if runs[-1].rc == 0:
            break
    return runs


def ray_faults(target: str, kills: int, seed: int, root: Path, inputs: list[str], env: dict, clean: dict) -> Outcome:
    """Rounds (``ray_round``) until ``kills`` kills have landed; each round's output against the clean run's."""
    ctx = {"clean": clean, "rng": random.Random(f"{seed}-{target}"), "inputs": inputs, "env": env}
    ctx["log"] = root / f"{target}.log"
    rounds: list[list[Attempt]] = []
    lost = duplicated = 0
    while sum(a.kills for r in rounds for a in r) < kills and len(rounds) < 3 * kills + 3:
        out = root / f"{target}-{len(rounds)}.jsonl"
        rounds.append(ray_round(target, kills - sum(a.kills for r in rounds for a in r), out, ctx))
        lost_here, dup_here = compare_rows(clean["rows"], read_rows(out))
        lost, duplicated = lost + lost_here, duplicated + dup_here
    runs = [a for r in rounds for a in r]
    refused = [a.error for a in runs if a.rc != 0 and a.kills == 0]  # failed though nothing was killed
    unfinished = sum(r[-1].rc != 0 for r in rounds)
    detail = {
        "rounds": len(rounds),
        "runs_per_round": [len(r) for r in rounds],
        "kill_moments_s": [a.moments for a in runs if a.moments],
        "failed_after_a_kill": sum(a.rc != 0 and a.kills > 0 for a in runs),
        "messages_after_a_kill": sorted({a.error for a in runs if a.rc > 0 and a.kills})[:3],
        "refusals": len(refused),
        "refusal_messages": refused[:5],
        "rounds_unfinished": unfinished,
        "ray_processes_left_behind": sum(a.left_behind for a in runs),
        "clean_rows": len(clean["rows"]),
        "clean_run_s": clean["seconds"],
    }
    killed = sum(a.kills for a in runs)
    return Outcome(f"ray {target}", killed, lost, duplicated, None, not refused and not unfinished, detail)


def ray_part(
    kills: int, seed: int, targets: list[str], images: int = 64, frames: int = 60, root: Path | None = None
) -> list[Outcome]:
    """A clean run, then ``kills`` kills of each target (``ray_faults``); ``images`` in the folder
    (every 8th without a face; 16 to a work item), a clip of ``frames`` frames (one item)."""
    root = Path(tempfile.mkdtemp(prefix="faults-ray-", dir=root))
    ray_tmp = tempfile.mkdtemp(prefix="rf-", dir="/tmp")  # short: Ray's socket paths live under it
    env = dict(os.environ, RAY_TMPDIR=ray_tmp)
    try:
        inputs = ray_inputs(root, images, frames)
        clean = ray_clean(root, inputs, env, random.Random(seed))
        return [ray_faults(t, kills, seed, root, inputs, env, clean) for t in targets]
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)


# ---- the table ----------------------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> str:
    lines = ["| killed | kills | lost | duplicated | stuck | resumable |", "|---|---|---|---|---|---|"]
    for o in outcomes:
        stuck = "-" if o.stuck is None else str(o.stuck)
        lines.append(
            f"| {o.target} | {o.kills} | {o.lost} | {o.duplicated} | {stuck} | {'yes' if o.resumable else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs of each target (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="seeds every random moment and input (default: %(default)s)")
    ap.add_argument("--parts", default="service,worker,driver", help="what to kill (default: %(default)s)")
    ap.add_argument("--output", metavar="JSON", help="also write the outcomes as JSON")
    args = ap.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(parts) - {"service", "worker", "driver"}:
        ap.error(f"unknown part(s) {', '.join(sorted(unknown))}; valid: service, worker, driver")
    started, outcomes = time.monotonic(), []
    if "service" in parts:
        with tempfile.TemporaryDirectory(prefix="faults-service-") as root:
            outcomes.append(service_faults(args.kills, args.seed, Path(root)))
        print(table(outcomes), flush=True)
    if ray_targets := [p for p in parts if p != "service"]:
        outcomes += ray_part(args.kills, args.seed, ray_targets)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _timing import cpu_name

    minutes = (time.monotonic() - started) / 60
    print(f"\n{time.strftime('%Y-%m-%d')}, seed {args.seed}, {minutes:.1f} min, {os.cpu_count()} CPUs: {cpu_name()}\n")
    print(table(outcomes))
    for o in outcomes:
        print(f"\n{o.target}: " + json.dumps(o.detail))
    if args.output:
        record = {"date": time.strftime("%Y-%m-%d"), "command": sys.argv, "seed": args.seed, "cpu": cpu_name()}
        Path(args.output).write_text(json.dumps(record | {"outcomes": [asdict(o) for o in outcomes]}, indent=1))


if __name__ == "__main__":
    main()
