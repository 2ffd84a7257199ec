"""``resemotenet serve`` against a real uvicorn server on 127.0.0.1 (a free port), over httpx.

Covers the endpoints, the micro-batcher, jobs on a clip and on a loopback MJPEG stream that is
cut and restored, the review loop, the token, and every bad-input path of the issue. Skipped
when the ``serve`` extra (fastapi, uvicorn, httpx) is not installed.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import threading
import time
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'resemotenet[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'resemotenet[serve]'")
httpx = pytest.importorskip("httpx", reason="httpx is not installed (part of the test extra)")

from resemotenet.inference.sources import demo_image
from resemotenet.inference.tracking import box_iou as iou
from resemotenet.models.checkpoint import DEFAULT_WEIGHTS
from resemotenet.serve.batcher import MicroBatcher
from resemotenet.serve.server import ServerThread
from resemotenet.serve.settings import ServeSettings
from resemotenet.utils.errors import ConfigError

TOKEN = "s3cret-token-for-tests"
PHOTO = demo_image().read_bytes()


def _cv2():
    import cv2

    return cv2


def face_crop() -> bytes:
    """The astronaut's face region as a JPEG (a crop a caller's own detector would send)."""
    cv2 = _cv2()
    img = cv2.imdecode(np.frombuffer(PHOTO, np.uint8), cv2.IMREAD_COLOR)
    return cv2.imencode(".jpg", img[50:180, 160:290])[1].tobytes()


def brighter(data: bytes, n: int, step: int = 8) -> list[bytes]:
    """``n`` copies of an image, each ``step`` grey levels brighter than the last, so that the review
    sampler (which queues near-identical crops once) sees different faces."""
    cv2 = _cv2()
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)
    return [cv2.imencode(".jpg", np.clip(img + step * (i + 1), 0, 255).astype(np.uint8))[1].tobytes() for i in range(n)]


def huge_png(side: int = 20000) -> bytes:
    """A valid PNG header declaring side x side pixels, with a tiny body: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def write_clip(path, frames: int = 24) -> None:
    cv2 = _cv2()
    img = cv2.resize(cv2.imdecode(np.frombuffer(PHOTO, np.uint8), cv2.IMREAD_COLOR), (320, 320))
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (320, 320))
    for _ in range(frames):
        w.write(img)
    w.release()


class MJPEGServer:
    """An HTTP MJPEG camera on loopback that can be cut (``stop``) and restored on the same port."""

    def __init__(self, port: int = 0):
        cv2 = _cv2()
        img = cv2.resize(cv2.imdecode(np.frombuffer(PHOTO, np.uint8), cv2.IMREAD_COLOR), (320, 320))
        jpeg, live = cv2.imencode(".jpg", img)[1].tobytes(), threading.Event()
        self.live = live

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while live.is_set():
                        head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                        self.wfile.write(head + jpeg + b"\r\n")
                        time.sleep(1 / 15)
                except OSError:
                    pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        live.set()
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.live.clear()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    media = tmp_path_factory.mktemp("media")
    write_clip(media / "clip.mp4")
    return {"media": media, "review": tmp_path_factory.mktemp("review")}


@pytest.fixture(scope="module")
def server(dirs):
    # min_confidence 0.99: the photo's face (p ~ 0.93) is 'uncertain', so it feeds the review queue
    settings = ServeSettings(
        port=0,
        min_confidence=0.99,
        review=str(dirs["review"]),
        review_max=3,
        media_dir=str(dirs["media"]),
        max_upload_mb=2,
        max_wait_ms=50,
        stream_timeout_s=1.5,
        stream_give_up_s=30,
    )
    with ServerThread(settings) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _error(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and "\n" not in body["error"]
    return body["error"]


def test_predict_finds_the_face_and_marks_it_uncertain(client):
    r = client.post("/v1/predict", content=PHOTO)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (512, 512)
    (face,) = body["faces"]
    x0, y0, x1, y1 = face["box"]
    assert 140 < x0 < x1 < 320 and 30 < y0 < y1 < 220
    assert abs(sum(face["probabilities"].values()) - 1) < 1e-3
    assert face["uncertain"] is True and face["label"] == "uncertain"
    assert face["top2"][0][0] == "happy"  # the model's best guess, handed to a person


def test_classify_one_or_many_crops_in_order(client):
    crop = face_crop()
    one = client.post("/v1/classify", content=crop).json()["faces"]
    many = client.post("/v1/classify", files=[("f", (f"c{i}.jpg", crop, "image/jpeg")) for i in range(3)])
    assert many.status_code == 200, many.text
    faces = many.json()["faces"]
    assert [f["name"] for f in faces] == ["c0.jpg", "c1.jpg", "c2.jpg"]
    assert all(abs(f["score"] - one[0]["score"]) < 1e-4 for f in faces)
    assert max(faces[0]["probabilities"], key=faces[0]["probabilities"].get) == "happy"


def test_bad_input_gets_the_right_status_and_the_server_keeps_serving(client):
    assert "empty" in _error(client.post("/v1/predict", content=b""), 400)
    _error(client.post("/v1/predict", content=b"%PDF-1.4 not an image at all"), 415)
    assert "truncated" in _error(client.post("/v1/predict", content=PHOTO[: len(PHOTO) // 2]), 400)
    assert "pixel" in _error(client.post("/v1/predict", content=huge_png()), 413)
    _error(client.post("/v1/predict", content=b"\xff\xd8\xff" + b"\0" * (3 * 1024 * 1024)), 413)  # > 2 MB
    _error(client.post("/v1/predict?model=nope", content=PHOTO), 404)
    _error(client.post("/v1/classify", files=[("f", ("a.txt", b"hello", "text/plain"))]), 415)
    _error(client.post("/v1/jobs", json={"stride": 1}), 422)
    _error(client.post("/v1/jobs", json={"source": "file:///etc/passwd"}), 422)
    _error(client.post("/v1/jobs", json={"source": "../../etc/passwd.mp4"}), 403)
    _error(client.get("/v1/jobs/doesnotexist"), 404)
    _error(client.get("/v1/review/../../etc/image"), 404)
    assert client.post("/v1/predict", content=PHOTO).status_code == 200


def test_a_stream_that_never_answers_is_503(client):
    with socket.socket() as silent:  # accepts connections, never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        r = client.post("/v1/jobs", json={"source": f"http://127.0.0.1:{silent.getsockname()[1]}/cam"})
    assert "did not answer" in _error(r, 503)
    assert time.monotonic() - started < 10
    assert client.get("/healthz").status_code == 200


def test_micro_batcher_merges_concurrent_requests():
    calls = []

    def fn(crops):
        calls.append(len(crops))
        time.sleep(0.02)
        return np.stack([np.full(3, float(c[0, 0, 0])) for c in crops])

    for enabled, expect_merged in ((True, True), (False, False)):
        calls.clear()
        b = MicroBatcher(fn, max_batch=64, max_wait_s=0.05, enabled=enabled)
        futs = [b.submit([np.full((2, 2, 3), i, np.uint8)] * 2) for i in range(8)]
        results = [f.result(5) for f in futs]
        b.close()
        assert all((r == i).all() and r.shape == (2, 3) for i, r in enumerate(results))  # each gets its own rows
        assert (len(calls) < 8) == expect_merged and sum(calls) == 16


def test_concurrent_http_requests_share_model_calls(client):
    def calls() -> float:
        line = next(x for x in client.get("/metrics").text.splitlines() if x.startswith("resemotenet_model_calls"))
        return float(line.split()[-1])

    before, crop = calls(), face_crop()
    out: list[int] = []

    def one():
        with httpx.Client(base_url=str(client.base_url), timeout=30) as c:
            out.append(c.post("/v1/classify", content=crop).status_code)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [200] * 12
    assert calls() - before < 12


def test_models_healthz_metrics_openapi(client):
    models = client.get("/v1/models").json()
    assert models["models"][0]["labels"][3] == "happy"
    assert client.get("/healthz").json()["status"] == "ok"
    text = client.get("/metrics").text
    assert 'resemotenet_requests_total{method="POST",route="/v1/predict",status="200"}' in text
    assert 'resemotenet_requests_total{method="POST",route="/v1/predict",status="415"}' in text
    assert "resemotenet_faces_total" in text and "resemotenet_queue_depth" in text
    assert "resemotenet_request_seconds_bucket" in text
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "<script" in page.text and "//cdn" not in page.text


def test_cross_origin_and_foreign_host_are_refused(client):
    _error(client.get("/v1/models", headers={"Origin": "http://evil.example"}), 403)
    assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 403
    assert "access-control-allow-origin" not in client.get("/v1/models").headers


def test_video_file_job_progress_results_timeline(client, dirs):
    job = client.post("/v1/jobs", json={"source": "clip.mp4"}).json()
    job = _wait(client, job["id"], lambda j: j["state"] != "running")
    assert job["state"] == "done" and job["frames"] == 24 and job["faces"] >= 20
    assert job["source"] == "clip.mp4"  # relative to the media folder
    listing = client.get("/v1/jobs").text
    assert str(dirs["media"]) not in listing and str(dirs["media"].resolve()) not in listing
    assert job["progress"] == 1.0
    rows = [json.loads(x) for x in client.get(f"/v1/jobs/{job['id']}/results").text.splitlines()]
    assert len(rows) == job["faces"] and rows[0]["track"] == 1
    saved = dirs["review"] / "jobs" / f"{job['id']}.jsonl"  # served from its file in the review folder's jobs/
    assert len(saved.read_text().splitlines()) == job["faces"]
    csv_text = client.get(f"/v1/jobs/{job['id']}/results?format=csv").text
    assert csv_text.startswith("source,frame,timestamp,x0") and len(csv_text.splitlines()) == job["faces"] + 1
    windows = client.get(f"/v1/jobs/{job['id']}/timeline?window=1").json()["windows"]
    assert len(windows) == 2 and abs(sum(windows[0]["shares"].values()) - 1) < 1e-3


def test_uploaded_clip_job_and_non_video_upload(client, dirs):
    data = (dirs["media"] / "clip.mp4").read_bytes()
    job = client.post("/v1/jobs/upload?name=my.mp4&stride=4", content=data).json()
    job = _wait(client, job["id"], lambda j: j["state"] != "running")
    assert job["state"] == "done" and job["frames"] == 6 and job["source"] == "my.mp4"
    _error(client.post("/v1/jobs/upload", content=PHOTO), 415)


def test_stream_job_reconnects_and_reports_the_gap(client):
    cam = MJPEGServer()
    job = client.post("/v1/jobs", json={"source": f"http://127.0.0.1:{cam.port}/cam.mjpg"})
    assert job.status_code == 201, job.text
    jid = job.json()["id"]
    _wait(client, jid, lambda j: j["frames"] >= 3)
    cam.stop()
    _wait(client, jid, lambda j: j["state"] == "reconnecting")
    time.sleep(1.0)
    cam = MJPEGServer(cam.port)
    try:
        job = _wait(client, jid, lambda j: j["gaps"] and j["gaps"][0]["end"] is not None and j["state"] == "running")
        frames = job["frames"]
        _wait(client, jid, lambda j: j["frames"] > frames)
        gap = job["gaps"][0]
        assert gap["seconds"] >= 1.0 and gap["attempts"] >= 1
        assert any("no frames from" in n for n in job["notes"])
        stopped = client.post(f"/v1/jobs/{jid}/stop").json()
        assert stopped["state"] == "stopped"
    finally:
        cam.stop()


def test_review_queue_label_export_and_retention(client, dirs):
    for photo in brighter(PHOTO, 5):
        assert client.post("/v1/predict", content=photo).status_code == 200
    queue = client.get("/v1/review").json()
    counts = queue["counts"]
    # review_max=3: later faces are refused and counted; nothing already waiting is evicted
    assert counts["pending"] == 3 and counts["refused"].get("full", 0) >= 2 and counts["folder"] == "labelled"
    assert "resemotenet_review_refused_full_total" in client.get("/metrics").text
    item = queue["items"][0]
    assert item["top2"][0][0] == "happy"
    img = client.get(f"/v1/review/{item['id']}/image")
    assert img.status_code == 200 and img.content[:3] == b"\xff\xd8\xff"
    assert "not a class" in _error(client.post(f"/v1/review/{item['id']}", json={"label": "joyful"}), 422)
    assert client.post(f"/v1/review/{item['id']}", json={"label": "happy"}).json()["label"] == "happy"
    again = client.post(f"/v1/review/{item['id']}", json={"label": "sad"})
    assert "already labelled 'happy'; undo it first" in _error(again, 409)
    _error(client.post("/v1/review/" + "0" * 32, json={"label": "happy"}), 404)  # unknown
    # undo: pending again and first in the queue; undoing a pending face is a conflict
    assert client.post(f"/v1/review/{item['id']}/undo").json() == {
        "id": item["id"],
        "undone": "happy",
        "state": "pending",
    }
    assert client.get("/v1/review").json()["items"][0]["id"] == item["id"]
    assert "no label to undo" in _error(client.post(f"/v1/review/{item['id']}/undo"), 409)
    assert client.post(f"/v1/review/{item['id']}", json={"label": "happy"}).json()["part"] == "test"
    # the first group to get a label is held out (all its faces), so no fine-tune trains on it
    assert (dirs["review"] / "review.sqlite3").is_file() and (dirs["review"] / "crops" / f"{item['id']}.jpg").is_file()
    names = zipfile.ZipFile(io.BytesIO(client.get("/v1/review-export").content)).namelist()
    assert f"test/happy/{item['id']}.jpg" in names and "groups.csv" in names
    counts = client.get("/v1/review").json()["counts"]
    assert counts["held_out"] == 1 and counts["per_class"]["happy"] == {"train": 0, "test": 1}

    second = client.get("/v1/review").json()["items"][0]
    cam = client.get(f"/v1/review/{second['id']}/explain")
    assert cam.status_code == 200 and cam.content[:8] == b"\x89PNG\r\n\x1a\n"
    heat = _cv2().imdecode(np.frombuffer(cam.content, np.uint8), 1)
    assert heat.shape[0] >= 192 and heat.std() > 10  # the crop, enlarged, under a coloured map
    _error(client.get("/v1/review/" + "0" * 32 + "/explain"), 404)

    # before / after: the served model and a checkpoint in the review folder, on the held-out face
    models = dirs["review"] / "models"
    models.mkdir(exist_ok=True)
    (models / "same.safetensors").write_bytes(DEFAULT_WEIGHTS.read_bytes())
    (models / "broken.pt").write_bytes(b"not a checkpoint")
    r = client.get("/v1/review-compare").json()
    assert r["held_out"] == 1 and "resemotenet finetune default --data folder:" in r["train_command"]
    served, broken, same = r["rows"]
    assert served["model"].startswith("served:") and served["n"] == 1
    assert same["model"] == "models/same.safetensors" and same["accuracy"] == served["accuracy"]
    assert broken["model"] == "models/broken.pt" and broken["error"]
    assert r["folder"] == "labelled/test" and str(dirs["review"]) not in json.dumps(r)  # no server path
    groups = (dirs["review"] / "labelled" / "groups.csv").read_text().splitlines()  # the folder the command names
    assert groups[0] == "file,group" and groups[1].startswith(f"test/happy/{item['id']}.jpg,")


def test_live_websocket_answers_frames_with_tracked_faces(server):
    from websockets.sync.client import connect

    with connect(server.url.replace("http", "ws") + "/v1/live") as ws:
        ws.send(json.dumps({"token": None}))
        assert json.loads(ws.recv())["ready"] is True
        tracks = []
        for _ in range(2):
            ws.send(PHOTO)
            tracks += [f["track"] for f in json.loads(ws.recv())["faces"]]
        assert tracks == [1, 1]
        ws.send(b"garbage")
        assert "error" in json.loads(ws.recv())  # one bad frame, the connection stays
        ws.send(PHOTO)
        assert json.loads(ws.recv())["faces"]


def test_token_is_required_when_set(monkeypatch):
    with pytest.raises(ConfigError, match="token"):
        ServeSettings(host="0.0.0.0")
    monkeypatch.setenv("RESEMOTENET_TOKEN", TOKEN)
    assert ServeSettings(host="0.0.0.0").token == TOKEN
    with ServerThread(ServeSettings(port=0, model="fast")) as s, httpx.Client(base_url=s.url) as c:
        assert "needs an API token" in _error(c.get("/v1/models"), 401)
        _error(c.get("/v1/models", headers={"Authorization": "Bearer wrong-token-123"}), 401)
        _error(c.get("/metrics", headers={"X-API-Token": "wrong"}), 401)
        assert c.get("/v1/models", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
        from websockets.sync.client import connect

        with connect(s.url.replace("http", "ws") + "/v1/live") as ws:
            ws.send(json.dumps({"token": "wrong"}))
            assert "token" in json.loads(ws.recv())["error"]


def test_cli_without_the_extra_names_it(monkeypatch, capsys):
    import sys

    from resemotenet.cli import main

    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "resemotenet[serve]" in err and "pip install" in err


def _browser():
    """A headless Chromium driven by selenium, or a skip saying what is missing."""
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chrome or not driver:
        pytest.skip("no headless browser: apt-get install chromium chromium-driver")
    return webdriver, chrome, driver


def camera_frame() -> np.ndarray:
    """The fake camera's 640x480 frame (BGR): the shipped photo, padded at the sides."""
    cv2 = _cv2()
    img = cv2.resize(cv2.imdecode(np.frombuffer(PHOTO, np.uint8), cv2.IMREAD_COLOR), (480, 480))
    return cv2.copyMakeBorder(img, 0, 0, 80, 80, cv2.BORDER_CONSTANT, value=(40, 40, 40))


def write_y4m(path, frames: int = 8) -> None:
    """A 640x480 clip of the shipped photo for Chromium's fake camera (raw I420 frames)."""
    cv2 = _cv2()
    yuv = cv2.cvtColor(camera_frame(), cv2.COLOR_BGR2YUV_I420).tobytes()
    path.write_bytes(
        b"YUV4MPEG2 W640 H480 F15:1 Ip A1:1 C420jpeg\n" + b"".join(b"FRAME\n" + yuv for _ in range(frames))
    )


def _chrome_options(webdriver, chrome: str, tmp_path):
    """Headless Chromium whose camera is the fake clip of the shipped photo."""
    write_y4m(tmp_path / "cam.y4m")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={tmp_path / 'cam.y4m'}",
        "--window-size=1200,1400",
    ):
        opts.add_argument(flag)
    return opts


def _shots(tmp_path) -> Path:
    shots = Path(os.environ.get("RESEMOTENET_TEST_ARTIFACTS", tmp_path))  # screenshots are kept there
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def _left_edge_white(b, box) -> float:
    """Share of white pixels along the left edge of a drawn box (uncertain faces: dashed white)."""
    x0, y0, _, y1 = box
    edge = np.array(
        b.execute_script(
            "const g = document.getElementById('overlay').getContext('2d');"
            f"return Array.from(g.getImageData({x0}, {y0}, 1, {y1 - y0}).data);"
        )
    ).reshape(-1, 4)
    return float(((edge[:, 3] > 200) & (edge[:, :3].min(1) > 200)).mean())


def test_page_in_headless_chromium_draws_boxes_and_labels_a_review_item(tmp_path):
    webdriver, chrome, driver = _browser()
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.support.ui import WebDriverWait

    opts, shots = _chrome_options(webdriver, chrome, tmp_path), _shots(tmp_path)
    settings = ServeSettings(port=0, min_confidence=0.99, review=str(tmp_path / "review"))
    with ServerThread(settings) as s:
        b = webdriver.Chrome(options=opts, service=DriverService(driver))
        try:
            b.get(s.url + "/")
            b.find_element("id", "live-start").click()
            wait = WebDriverWait(b, 30)
            wait.until(lambda d: d.execute_script("return (state.lastFaces || []).length") > 0)
            b.save_screenshot(str(shots / "serve_live.png"))
            white = _left_edge_white(b, b.execute_script("return state.lastFaces[0].box"))
            assert 0.3 < white < 0.9, white  # the left edge drawn dashed white: uncertain
            assert "uncertain?" in b.execute_script("return faceText(state.lastFaces[0])")
            b.find_element("id", "live-stop").click()
            b.find_element("css selector", "[data-tab=review]").click()
            wait.until(lambda d: d.find_element("id", "review-item").is_displayed())
            item = b.execute_script("return state.review.id")
            assert "uncertain" in b.find_element("id", "review-reason").text
            assert (
                "%" in b.find_element("id", "review-top2").text
                and "from " in b.find_element("id", "review-origin").text
            )
            b.find_element("css selector", "#review-buttons [data-label=happy]").click()  # a button, as on a tablet
            classes = lambda d: d.find_element("id", "review-classes").text  # noqa: E731 - class, for training, held out
            wait.until(lambda d: "happy 0 1" in classes(d))
            b.find_element("id", "review-undo").click()  # back in the queue, first
            wait.until(
                lambda d: "happy 0 0" in classes(d) and d.execute_script("return state.review && state.review.id")
            )
            assert b.execute_script("return state.review.id") == item
            b.save_screenshot(str(shots / "serve_review_item.png"))  # buttons, reason, top-2, source and time
            b.find_element("tag name", "body").send_keys("4")  # 4 = happy, the 4th label: keys still label
            wait.until(lambda d: "happy 0 1" in classes(d))
            b.find_element("id", "review-compare").click()  # before / after on the held-out face
            wait.until(lambda d: "served:" in d.find_element("id", "compare-table").text)
            assert "1 held-out face(s)" in b.find_element("id", "compare-msg").text
            assert "--data folder:" in b.find_element("id", "compare-command").text
            b.save_screenshot(str(shots / "serve_review.png"))
        finally:
            b.quit()
        with httpx.Client(base_url=s.url) as c:
            names = zipfile.ZipFile(io.BytesIO(c.get("/v1/review-export").content)).namelist()
    assert f"test/happy/{item}.jpg" in names


def test_on_device_mode_analyses_in_the_page_and_sends_no_frame(tmp_path):
    """The detector and the model run in Chromium on ONNX Runtime Web: boxes and labels are drawn,
    the service sees no frame, and the page's answer matches the service's on the same frame."""
    webdriver, chrome, driver = _browser()
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    opts, shots = _chrome_options(webdriver, chrome, tmp_path), _shots(tmp_path)
    settings = ServeSettings(port=0, min_confidence=0.99, detector="centerface")
    with ServerThread(settings) as s:
        b = webdriver.Chrome(options=opts, service=DriverService(driver))
        try:
            b.get(s.url + "/")
            Select(b.find_element("id", "live-mode")).select_by_value("device")
            assert b.find_element("id", "mode-device").is_displayed()
            b.find_element("id", "live-start").click()
            WebDriverWait(b, 180).until(
                lambda d: (
                    d.execute_script("return (state.lastFaces || []).length") > 0
                    or "on-device" in d.find_element("id", "live-info").text
                )
            )
            info = b.find_element("id", "live-info").text
            assert "in this browser" in info, info
            assert b.execute_script("return state.mode") == "device" and b.execute_script("return state.ws") is None
            b.save_screenshot(str(shots / "serve_on_device.png"))
            page = b.execute_script("return state.lastFaces[0]")
            white = _left_edge_white(b, page["box"])
            assert 0.3 < white < 0.9, white
            b.find_element("id", "live-stop").click()
        finally:
            b.quit()
        with httpx.Client(base_url=s.url) as c:
            metrics = c.get("/metrics").text
            assert 'route="/v1/live"' not in metrics and 'route="/v1/predict"' not in metrics
            ok, png = _cv2().imencode(".png", camera_frame())
            served = c.post("/v1/predict", content=png.tobytes()).json()["faces"]
    assert len(served) == 1 and page["uncertain"] and page["top2"]
    assert iou(tuple(page["box"]), tuple(served[0]["box"])) > 0.8, (page["box"], served[0]["box"])
    p_page = np.array([page["probabilities"][k] for k in served[0]["probabilities"]])
    p_served = np.array(list(served[0]["probabilities"].values()))
    assert p_page.argmax() == p_served.argmax() and np.abs(p_page - p_served).max() < 0.1, (p_page, p_served)


FAKE_FINETUNE = """
import os, shutil, sys, time
out, staged, gate, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if epochs == 1:
    print("error: too few faces per class to fine-tune (5 needed)", flush=True)
    sys.exit(2)
print(f"epoch 1/{epochs} train_loss 1.0 val_acc 0.5", flush=True)
while not os.path.exists(gate):
    time.sleep(0.05)
for i in range(2, epochs + 1):
    print(f"epoch {i}/{epochs} train_loss 1.0 val_acc 0.5", flush=True)
shutil.copytree(staged, out + ".part")
os.rename(out + ".part", out)
"""


def _staged_run(folder: Path) -> None:
    """What ``resemotenet finetune`` leaves: weights (the served model, another temperature) and a
    report whose fine-tune is better overall and worse on the faces the base model was sure of."""
    from resemotenet.models.checkpoint import load_model, save_model

    m = load_model("fast")
    folder.mkdir(parents=True)
    save_model(folder / "model.safetensors", m, m.card.with_(temperature=3.5).to_meta())
    iv = lambda e, lo, hi: {"estimate": e, "low": lo, "high": hi}  # noqa: E731
    part = lambda n, g, b, a, d, v, more: {  # noqa: E731
        "faces": n, "groups": g, "before": b, "after": a, "difference": d, "verdict": v,
        "more_faces_for_half_width": {"0.05": more},
    }  # fmt: skip
    held = {
        "faces": 60,
        "groups": 12,
        "all": part(60, 12, iv(0.5, 0.4, 0.6), iv(0.6, 0.5, 0.7), iv(0.1, 0.02, 0.18), "better", 140),
        "uncertain": part(40, 10, iv(0.3, 0.2, 0.4), iv(0.5, 0.4, 0.6), iv(0.2, 0.1, 0.3), "better", 90),
        "confident": part(20, 8, iv(0.9, 0.8, 1.0), iv(0.8, 0.7, 0.9), iv(-0.1, -0.18, -0.02), "worse", 200),
        "verdict": "better",
        "regression_on_confident": True,
    }
    (folder / "report.json").write_text(json.dumps({"date": "2026-12-07", "parts": {}, "held_out": held}))


def test_page_fine_tunes_shows_the_before_after_promotes_and_rolls_back(tmp_path, monkeypatch):
    """The Fine-tune button against a quick stand-in for ``resemotenet finetune`` (a child process
    that prints its epochs, waits for the test, then leaves a finished run): the failure reason,
    the progress, the before/after with intervals and the warning, then Promote (confirmed) and
    Roll back change the model the page shows."""
    import sys

    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from resemotenet.serve import site

    webdriver, chrome, driver = _browser()
    staged, gate = tmp_path / "staged", tmp_path / "gate"
    _staged_run(staged)

    class QuickFinetune(site.FinetuneJob):
        def __init__(self, name, cmd, log):
            epochs = cmd[cmd.index("--epochs") + 1] if "--epochs" in cmd else "3"
            out = cmd[cmd.index("-o") + 1]
            super().__init__(name, [sys.executable, "-c", FAKE_FINETUNE, out, str(staged), str(gate), epochs], log)

    monkeypatch.setattr(site, "FinetuneJob", QuickFinetune)
    opts, shots = _chrome_options(webdriver, chrome, tmp_path), _shots(tmp_path)
    settings = ServeSettings(port=0, model="fast", review=str(tmp_path / "review"))
    with ServerThread(settings) as s:
        b = webdriver.Chrome(options=opts, service=DriverService(driver))
        try:
            wait, text = WebDriverWait(b, 30), lambda i: b.find_element("id", i).text  # noqa: E731
            b.get(s.url + "/")
            wait.until(lambda d: "model fast," in text("status"))
            b.find_element("css selector", "[data-tab=review]").click()
            wait.until(lambda d: d.find_element("id", "ft-start").is_enabled())
            b.find_element("id", "ft-epochs").send_keys("1")  # the stand-in fails with 1 epoch
            b.find_element("id", "ft-start").click()
            wait.until(lambda d: "failed: error: too few faces per class" in text("ft-progress"))
            b.find_element("id", "ft-epochs").clear()
            b.find_element("id", "ft-epochs").send_keys("3")
            b.find_element("id", "ft-start").click()
            wait.until(lambda d: "epoch 1 of 3 done" in text("ft-progress"))  # polled every 2 s
            assert not b.find_element("id", "ft-start").is_enabled()  # one fine-tune at a time
            gate.touch()
            wait.until(lambda d: d.find_elements("css selector", ".ft-run"))
            run = b.find_element("css selector", ".ft-run")
            name = run.get_attribute("data-run")
            assert "finished" in text("ft-progress") and name in text("ft-progress")
            row = lambda part: run.find_element("css selector", f"tr[data-part={part}]").text  # noqa: E731
            assert "50.0 % [40.0, 60.0]" in row("all") and "60.0 % [50.0, 70.0]" in row("all")
            assert "+10.0 points [+2.0, +18.0]" in row("all") and "better" in row("all")
            assert "-10.0 points [-18.0, -2.0]" in row("confident") and "worse" in row("confident")
            assert "Verdict: better" in run.text and "Warning: worse on the faces" in run.text
            assert "About 140 more held-out faces for a +-5-point difference." in run.text
            assert not b.find_element("id", "ft-rollback").is_displayed()
            b.save_screenshot(str(shots / "serve_finetune.png"))
            run.find_element("css selector", "button.ft-promote").click()
            WebDriverWait(b, 10).until(ec.alert_is_present())
            b.switch_to.alert.dismiss()  # nothing is promoted without a yes
            time.sleep(0.5)
            assert "model fast," in text("status")
            b.find_element("css selector", "button.ft-promote").click()
            WebDriverWait(b, 10).until(ec.alert_is_present())
            b.switch_to.alert.accept()
            wait.until(lambda d: f"model runs/{name}/model.safetensors," in text("status"))
            wait.until(lambda d: d.find_element("id", "ft-rollback").is_displayed())
            assert "(served now)" in b.find_element("css selector", ".ft-run h4").text
            assert not b.find_elements("css selector", "button.ft-promote")
            b.find_element("id", "ft-rollback").click()
            wait.until(lambda d: "model fast," in text("status"))
            wait.until(lambda d: not d.find_element("id", "ft-rollback").is_displayed())
            assert b.find_elements("css selector", "button.ft-promote")
        finally:
            b.quit()
        with httpx.Client(base_url=s.url) as c:
            assert c.get("/v1/models").json()["models"][0]["weights"] == "fast"


def test_on_device_files_and_description(client):
    info = client.get("/v1/on-device").json()
    assert info["labels"][0] == "angry" and info["preprocess"]["size"] == 96
    assert info["detector"]["outputs"] == ["537", "538", "539", "540"] and info["framing"]["margin"] >= 0
    detector = client.get(info["detector"]["url"])
    assert detector.status_code == 200 and len(detector.content) > 1_000_000
    for name in ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"):
        r = client.get(f"/static/ort/{name}")
        assert r.status_code == 200 and len(r.content) > 10_000, name
    assert client.get("/static/ort/ort-wasm-simd-threaded.mjs").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/ort/ort-wasm-simd-threaded.wasm").headers["content-type"] == "application/wasm"


def _wait(client, job_id: str, done, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job did not get there in {timeout} s: {job}")
        time.sleep(0.1)


def test_onnxruntime_engine_answers_as_torch_does(client):
    """--engine onnxruntime: the same model converted once at start-up; the same probabilities."""
    crop = face_crop()
    by_torch = client.post("/v1/classify", content=crop).json()["faces"][0]["probabilities"]
    with ServerThread(ServeSettings(port=0, engine="onnxruntime")) as s, httpx.Client(base_url=s.url) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        by_ort = c.post("/v1/classify", content=crop).json()["faces"][0]["probabilities"]
    assert max(abs(by_torch[k] - by_ort[k]) for k in by_torch) < 1e-4
    with pytest.raises(ConfigError, match="unknown engine"):
        ServeSettings(engine="tensorrt")


# -- back-pressure, errors as clear 4xx, hostile origins (issue 32) ---------------------------------


def _metric(client, name: str) -> float:
    line = next(x for x in client.get("/metrics").text.splitlines() if x.startswith(name + " "))
    return float(line.split()[-1])


def _until(check, timeout: float = 30.0) -> None:
    """Wait for a state (not a timing assertion: the limit only keeps a broken run from hanging)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the state was not reached"
        time.sleep(0.02)


def test_bounded_pool_refuses_beyond_its_queue_and_counts():
    from resemotenet.serve.errors import Busy
    from resemotenet.serve.pool import BoundedPool

    gate, pool = threading.Event(), BoundedPool(workers=1, max_queue=2, retry_after_s=3)
    futs = [pool.submit(gate.wait, 30) for _ in range(3)]  # one running, two waiting
    with pytest.raises(Busy, match="busy") as refused:
        pool.submit(gate.wait, 30)
    assert refused.value.status == 503 and refused.value.retry_after == 3
    assert pool.rejected == 1 and pool.depth == 2
    gate.set()
    assert all(f.result(30) for f in futs)
    _until(lambda: pool.depth == 0)
    assert pool.submit(lambda: 7).result(30) == 7
    pool.shutdown()


def test_bounded_pool_refuses_a_wait_longer_than_its_budget():
    """On a slow or shared machine a short queue is already a long wait: admission also bounds
    the expected wait (queue ahead x recent time per job / workers)."""
    from resemotenet.serve.errors import Busy
    from resemotenet.serve.pool import BoundedPool

    gate, pool = threading.Event(), BoundedPool(workers=1, max_queue=10, max_wait_s=0.5)
    held = pool.submit(gate.wait, 30)  # a free worker: admitted whatever the average
    pool.job_s = 0.4  # as if each image took 0.4 s lately
    queued = pool.submit(gate.wait, 30)  # waits one job: 0.4 s <= 0.5 s
    with pytest.raises(Busy, match="ms of work"):
        pool.submit(gate.wait, 30)  # would wait two: 0.8 s
    assert pool.rejected == 1 and pool.depth == 1
    gate.set()
    assert held.result(30) and queued.result(30)
    pool.shutdown()


def test_full_detection_and_model_queues_answer_503_with_retry_after():
    """A slow model and a slow detection pool (held by a gate): beyond their queues, 503 at once."""
    settings = ServeSettings(port=0, model="fast", workers=1, max_detect_queue=1, max_queue=1, max_batch=1)
    with ServerThread(settings) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        service = s.server.config.app.state.service
        gate, real = threading.Event(), service.batcher.fn
        service.batcher.fn = lambda crops: (gate.wait(30), real(crops))[1]
        crop = np.full((48, 48, 3), 128, np.uint8)
        held = [service.batcher.submit([crop])]  # taken by the batcher's worker, stuck in the model
        _until(lambda: service.batcher.depth == 0)
        held.append(service.batcher.submit([crop]))  # waits: the model's queue (1) is full
        r = c.post("/v1/classify", content=face_crop())
        assert "waiting for the model" in _error(r, 503) and r.headers["retry-after"] == "1"

        pool_held = [service.pool.submit(gate.wait, 30) for _ in range(2)]  # one detecting, one waiting
        r = c.post("/v1/predict", content=PHOTO)
        assert "face detection" in _error(r, 503) and r.headers["retry-after"] == "1"
        assert _metric(c, "resemotenet_detect_queue_depth") == 1 and _metric(c, "resemotenet_queue_depth") == 1
        assert _metric(c, "resemotenet_detect_rejected_total") == 1
        assert _metric(c, "resemotenet_model_rejected_total") == 1
        assert 'route="/v1/predict",status="503"' in c.get("/metrics").text

        gate.set()
        assert all(f.result(30) is not None for f in held + pool_held)
        assert c.post("/v1/predict", content=PHOTO).status_code == 200  # the service recovers


def test_chunked_upload_over_the_limit_is_413_and_counted(client):
    def chunks():  # no Content-Length: 3 MB against the 2 MB limit, counted as it arrives
        for _ in range(48):
            yield b"\0" * 65536

    assert "limit" in _error(client.post("/v1/predict", content=chunks()), 413)
    text = client.get("/metrics").text
    assert 'route="/v1/predict",status="413"' in text and 'resemotenet_refused_total{reason="body_too_large"}' in text
    assert client.post("/v1/predict", content=PHOTO).status_code == 200


def test_timeline_window_must_be_a_finite_positive_number(client):
    for bad in ("nan", "inf", "-inf", "-5", "0", "1e9"):
        assert "window" in _error(client.get(f"/v1/jobs/anything/timeline?window={bad}"), 422), bad
    assert 'route="/v1/jobs/{job_id}/timeline",status="422"' in client.get("/metrics").text


def test_text_frame_on_the_live_socket_is_answered_and_closed(server, client):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(server.url.replace("http", "ws") + "/v1/live") as ws:
        ws.send(json.dumps({"token": None}))
        assert json.loads(ws.recv())["ready"] is True
        ws.send("not a frame")
        assert "binary" in json.loads(ws.recv())["error"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
        assert closed.value.rcvd.code == 1003
    assert 'resemotenet_refused_total{reason="ws_text_frame"}' in client.get("/metrics").text


def test_origin_null_is_refused_over_http_and_on_the_live_socket(server, client):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    assert "refused" in _error(client.get("/v1/models", headers={"Origin": "null"}), 403)
    assert "refused" in _error(client.post("/v1/predict", content=PHOTO, headers={"Origin": "null"}), 403)
    assert client.get("/v1/models", headers={"Origin": server.url}).status_code == 200  # its own page
    with pytest.raises(InvalidStatus) as refused:
        with connect(server.url.replace("http", "ws") + "/v1/live", origin="null"):
            pass
    assert refused.value.response.status_code == 403
    assert 'resemotenet_refused_total{reason="origin"}' in client.get("/metrics").text


def test_review_store_refuses_when_full_and_caps_one_request(tmp_path):
    from resemotenet.inference.results import FaceResult
    from resemotenet.serve.review import ReviewStore, review_budget

    store = ReviewStore(tmp_path, ("angry", "happy"), max_pending=5)
    face = FaceResult("x", 0, 0.0, (0, 0, 8, 8), "uncertain", 0.4, {"angry": 0.4, "happy": 0.6}, None, None)
    crop = np.zeros((8, 8, 3), np.uint8)
    with review_budget(2):
        first = [store.add(crop, face, "x") for _ in range(4)]
    assert [i is not None for i in first] == [True, True, False, False]
    more = [store.add(crop, face, "x") for _ in range(4)]
    assert [i is not None for i in more] == [True, True, True, False]
    assert store.refused == {"request_cap": 2, "full": 1} and store.pending_count() == 5
    assert {item["id"] for item in store.pending(10)} >= set(first[:2])  # the oldest were kept


def test_any_loopback_host_serves_and_one_request_adds_few_review_items(tmp_path):
    """--host 127.0.0.2 answers (loopback is 127.0.0.0/8); an allowed origin is let in; one
    /v1/classify request with 12 uncertain crops queues at most review_per_request (8) of them."""
    settings = ServeSettings(
        port=0, host="127.0.0.2", model="fast", review=str(tmp_path), min_confidence=1.0, allow_origins=("null",)
    )
    with ServerThread(settings) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        assert s.url.startswith("http://127.0.0.2:")
        assert c.get("/v1/models").status_code == 200
        assert c.get("/v1/models", headers={"Origin": "null"}).status_code == 200  # listed, so let in
        _error(c.get("/v1/models", headers={"Origin": "http://evil.example"}), 403)
        crops = brighter(face_crop(), 12, step=6)
        r = c.post("/v1/classify", files=[("f", (f"c{i}.jpg", crop, "image/jpeg")) for i, crop in enumerate(crops)])
        assert r.status_code == 200 and len(r.json()["faces"]) == 12
        counts = c.get("/v1/review").json()["counts"]
        assert counts["pending"] <= 8 and counts["refused"].get("request_cap", 0) >= 4
        assert _metric(c, "resemotenet_review_refused_request_cap_total") >= 4


def test_busy_detect_side_shrinks_frames_only_while_images_wait():
    """--busy-detect-side (320 with CenterFace by default): a worker searches smaller frames while
    others wait (more frames/s under load), the full size otherwise; the face is found at nearly
    the same box either way."""
    from resemotenet.serve.service import Service

    with pytest.raises(ConfigError, match="busy_detect_side"):
        ServeSettings(detector="haar", busy_detect_side=320)
    assert ServeSettings().busy_side == 320 and ServeSettings(busy_detect_side=0).busy_side is None
    assert ServeSettings(detector="haar").busy_side is None  # a detector without a frame size: off
    service = Service(ServeSettings(model="fast", workers=1, busy_detect_side=320))
    try:
        rgb = _cv2().cvtColor(_cv2().imdecode(np.frombuffer(PHOTO, np.uint8), 1), _cv2().COLOR_BGR2RGB)
        calm = service._detector()
        gate = threading.Event()
        held = [service.pool.submit(gate.wait, 30) for _ in range(2)]  # one running, one waiting
        busy = service._detector()
        gate.set()
        assert all(f.result(30) for f in held)
        assert (calm.max_side, busy.max_side) == (480, 320) and service.busy_frames == 1
        (a,), (b,) = calm(rgb), busy(rgb)
        assert iou(a.box, b.box) > 0.8
        assert "resemotenet_detect_busy_frames_total 1" in service.metrics.render()
    finally:
        service.close()
