"""The Predictor, its sources and result files, and ``resemotenet predict`` / ``demo``.

A random compact model (``tiny_checkpoint``) stands in for the shipped one: these tests pin
behaviour that does not depend on accuracy. Videos are made by the tests with cv2.VideoWriter.
"""

from __future__ import annotations

import csv
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from resemotenet.cli import main
from resemotenet.imaging import read_image
from resemotenet.inference.predictor import Predictor
from resemotenet.inference.results import FaceResult
from resemotenet.inference.sources import demo_image, open_source
from resemotenet.inference.summary import RunSummary
from resemotenet.inference.tracking import IoUTracker
from resemotenet.inference.writers import open_writer
from resemotenet.utils.errors import ConfigError, DataError

FPS = 10.0


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return read_image(demo_image())


@pytest.fixture
def predictor(tiny_checkpoint) -> Predictor:
    return Predictor(tiny_checkpoint)


def write_video(path: Path, astronaut: np.ndarray, frames: int = 8, faces: int = 2) -> Path:
    """An MJPG video of ``faces`` copies of the astronaut's head drifting right, 2 px a frame."""
    head = cv2.cvtColor(astronaut[20:260, 120:330], cv2.COLOR_RGB2BGR)  # 240x210, face ~95 px
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (240 * faces + 40, 260))
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((260, 240 * faces + 40, 3), 90, np.uint8)
        for k in range(faces):
            x = 10 + 240 * k + 2 * i
            frame[10:250, x : x + 210] = head
        writer.write(frame)
    writer.release()
    return path


def bomb_png(path: Path, side: int) -> Path:
    """A PNG whose header declares side x side pixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1000))) + chunk(b"IEND", b"")
    )
    return path


# -- still images ---------------------------------------------------------------------------------
def test_one_face_with_every_field(predictor):
    faces = predictor.predict(demo_image())
    assert len(faces) == 1
    f = faces[0]
    assert f.source.endswith("astronaut.jpg") and f.frame == 0 and f.timestamp is None and f.track is None
    assert list(f.probabilities) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert sum(f.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert f.label == max(f.probabilities, key=f.probabilities.get)
    assert f.score == pytest.approx(max(f.probabilities.values()))
    assert f.top2 is None
    d = json.loads(json.dumps(f.to_dict()))
    assert d["box"] == list(f.box) and d["label"] == f.label


def test_crop_preprocessing_and_temperature_follow_the_metadata(tmp_path, astronaut):
    """Probabilities = softmax(logits / T) of the margin crop, preprocessed per the checkpoint."""
    from resemotenet.config import PreprocessSpec
    from resemotenet.data.transforms import preprocess_batch, resize_face
    from resemotenet.inference.faces import expand_box
    from resemotenet.labels import EMOTIONS7
    from resemotenet.models import create_model, load_model, save_model
    from resemotenet.models.checkpoint import make_meta

    torch.manual_seed(1)
    spec = PreprocessSpec(size=40, channels=3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25))
    meta = make_meta("resemotenet_s", {"num_classes": 7}, spec, EMOTIONS7, temperature=0.05)
    path = save_model(tmp_path / "rgb.safetensors", create_model("resemotenet_s", num_classes=7), meta)
    face = Predictor(path, margin=0.3).predict(astronaut)[0]
    x0, y0, x1, y1 = expand_box(face.box, 0.3, 512, 512)
    x = preprocess_batch(resize_face(astronaut[y0:y1, x0:x1], 40)[None], spec)
    with torch.no_grad():
        expected = torch.softmax(load_model(path)(x) / 0.05, -1)[0].numpy()
    assert np.allclose(list(face.probabilities.values()), expected, atol=1e-5)


def test_path_pil_and_array_inputs_agree(predictor, astronaut):
    from PIL import Image

    by_path = predictor.predict(demo_image())[0]
    by_pil = predictor.predict(Image.open(demo_image()))[0]
    by_rgb = predictor.predict(astronaut)[0]
    by_bgr = predictor.predict(np.ascontiguousarray(astronaut[..., ::-1]), bgr=True)[0]
    for other in (by_pil, by_rgb, by_bgr):
        assert other.box == by_path.box
        assert np.allclose(list(other.probabilities.values()), list(by_path.probabilities.values()), atol=1e-6)
    with pytest.raises(DataError, match="uint8"):
        predictor.predict(astronaut.astype(np.float32))


def test_uncertain_below_min_confidence_gives_top2(tiny_checkpoint):
    f = Predictor(tiny_checkpoint, min_confidence=0.99).predict(demo_image())[0]
    assert f.label == "uncertain"
    ranked = sorted(f.probabilities.items(), key=lambda kv: -kv[1])
    assert [n for n, _ in f.top2] == [ranked[0][0], ranked[1][0]]
    assert f.top2[0][1] >= f.top2[1][1] and f.score == pytest.approx(ranked[0][1])


def test_zero_faces_is_an_empty_result_not_an_error(predictor):
    assert predictor.predict(np.full((240, 320, 3), 200, np.uint8)) == []


def test_decompression_bomb_is_refused(predictor, tmp_path):
    for side in (8_000, 100_000):  # under and over PIL's own bomb limit
        with pytest.raises(DataError, match="pixel limit"):
            predictor.predict(bomb_png(tmp_path / f"bomb{side}.png", side))


def test_bad_settings_are_config_errors(tiny_checkpoint):
    with pytest.raises(ConfigError):
        Predictor(tiny_checkpoint, min_confidence=1.5)
    with pytest.raises(ConfigError, match="smoothing"):
        Predictor(tiny_checkpoint, smoothing=1.0)
    with pytest.raises(ConfigError, match="valid detectors"):
        Predictor(tiny_checkpoint, detector="nope")


# -- videos and webcams ---------------------------------------------------------------------------
def test_video_tracks_faces_with_timestamps(predictor, tmp_path, astronaut):
    video = write_video(tmp_path / "two.avi", astronaut, frames=8)
    frames = list(predictor.predict_source(video))
    assert [fr.frame for fr in frames] == list(range(8))
    assert [fr.timestamp for fr in frames] == pytest.approx([i / FPS for i in range(8)])
    assert all(len(fr.faces) == 2 for fr in frames)
    left, right = {fr.faces[0].track for fr in frames}, {fr.faces[1].track for fr in frames}
    assert len(left) == 1 and len(right) == 1 and left != right


def test_video_windowed_face_search_matches_whole_frame_search(tiny_checkpoint, tmp_path, astronaut):
    video = write_video(tmp_path / "two.avi", astronaut, frames=8)
    every = [[f.box for f in fr.faces] for fr in Predictor(tiny_checkpoint, redetect_every=1).predict_source(video)]
    windowed = [[f.box for f in fr.faces] for fr in Predictor(tiny_checkpoint, redetect_every=4).predict_source(video)]
    assert [len(b) for b in windowed] == [len(b) for b in every] == [2] * 8
    for a, b in zip(every, windowed):
        assert max(abs(u - v) for ba, bb in zip(a, b) for u, v in zip(ba, bb)) <= 8
    with pytest.raises(ConfigError, match="redetect_every"):
        Predictor(tiny_checkpoint, redetect_every=0)


def test_video_stride_and_max_frames(predictor, tmp_path, astronaut):
    video = write_video(tmp_path / "v.avi", astronaut, frames=8, faces=1)
    frames = list(predictor.predict_source(video, stride=3))
    assert [fr.frame for fr in frames] == [0, 3, 6]
    assert [fr.timestamp for fr in frames] == pytest.approx([0.0, 0.3, 0.6])
    assert len(list(predictor.predict_source(video, max_frames=2))) == 2


def test_track_probabilities_are_an_ema(tiny_checkpoint, tmp_path, astronaut):
    video = write_video(tmp_path / "v.avi", astronaut, frames=3, faces=1)
    raw = [fr.faces[0].probabilities for fr in Predictor(tiny_checkpoint, smoothing=0.0).predict_source(video)]
    smooth = [fr.faces[0].probabilities for fr in Predictor(tiny_checkpoint, smoothing=0.5).predict_source(video)]
    r = np.array([list(p.values()) for p in raw])
    s = np.array([list(p.values()) for p in smooth])
    assert np.allclose(s[0], r[0], atol=1e-6)
    assert np.allclose(s[1], 0.5 * r[0] + 0.5 * r[1], atol=1e-6)
    assert np.allclose(s[2], 0.5 * s[1] + 0.5 * r[2], atol=1e-6)


def test_tracker_keeps_ids_by_overlap_and_starts_new_ones():
    t = IoUTracker(smoothing=0.0)
    p = np.eye(2, 3)
    assert t.update([(0, 0, 10, 10), (50, 50, 60, 60)], p)[0] == [1, 2]
    assert t.update([(51, 51, 61, 61), (1, 0, 11, 10)], p)[0] == [2, 1]
    assert t.update([(100, 100, 110, 110)], p[:1])[0] == [3]


def test_truncated_video_ends_early_with_a_note(predictor, tmp_path, astronaut):
    full = write_video(tmp_path / "full.avi", astronaut, frames=20, faces=1).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full[: len(full) // 2])
    src = open_source(cut)
    frames = list(predictor.predict_source(src))
    assert 0 < len(frames) < 20
    assert any("header declares 20" in n for n in src.notes)


def test_unopenable_video_and_missing_webcam_are_data_errors(tmp_path):
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"definitely not a video" * 50)
    with pytest.raises(DataError, match="junk.avi: cannot open as a video"):
        open_source(junk)
    with pytest.raises(DataError, match="webcam 57: cannot be opened"):
        open_source(57)
    with pytest.raises(DataError, match="no such file"):
        open_source(tmp_path / "missing.jpg")


class FakeCamera:
    """Stands in for ``cv2.VideoCapture(index)``: a few frames, then (optionally) Ctrl-C."""

    def __init__(self, frame: np.ndarray, frames: int, interrupt: bool = False):
        self.frame, self.left, self.interrupt = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), frames, interrupt

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def get(self, prop: int) -> float:
        return {
            cv2.CAP_PROP_FRAME_WIDTH: self.frame.shape[1],
            cv2.CAP_PROP_FRAME_HEIGHT: self.frame.shape[0],
            cv2.CAP_PROP_FPS: 30.0,
        }.get(prop, 0.0)

    def read(self):
        if self.left == 0:
            if self.interrupt:
                raise KeyboardInterrupt
            return False, None
        self.left -= 1
        return True, self.frame.copy()

    def release(self) -> None:
        pass


def test_webcam_frames_are_tracked_and_ctrl_c_ends_the_run_cleanly(
    tmp_path, astronaut, tiny_checkpoint, monkeypatch, capsys
):
    real = cv2.VideoCapture
    monkeypatch.setattr(
        cv2,
        "VideoCapture",
        lambda i, *a: FakeCamera(astronaut, 5, interrupt=True) if isinstance(i, int) else real(i, *a),
    )
    out = tmp_path / "cam.jsonl"
    code = main(["predict", "--webcam", "0", "--model", str(tiny_checkpoint), "-o", str(out), "--stride", "2"])
    assert code == 0
    assert "webcam:0: stopped with Ctrl-C" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in rows] == [0, 2, 4]
    assert {r["track"] for r in rows} == {1} and {r["source"] for r in rows} == {"webcam:0"}
    times = [r["timestamp"] for r in rows]
    assert times == sorted(times)
    monkeypatch.setattr(cv2, "VideoCapture", lambda i, *a: FakeCamera(astronaut, 10))
    assert len(list(Predictor(tiny_checkpoint).predict_source(0, max_frames=4))) == 4


def test_summary_time_shares(predictor, tmp_path, astronaut):
    video = write_video(tmp_path / "v.avi", astronaut, frames=6, faces=1)
    summary = RunSummary()
    for fr in predictor.predict_source(video):
        summary.add(fr, timed=True)
    summary.end_source(str(video))
    shares = summary.time_shares(str(video))
    assert shares["seconds"] == pytest.approx(6 / FPS)
    assert shares["face_share"] == pytest.approx(1.0)
    assert sum(shares["emotions"].values()) == pytest.approx(1.0)
    assert sum(summary.per_emotion.values()) == 6


# -- result files ---------------------------------------------------------------------------------
def test_writers_flush_every_row(tmp_path):
    face = FaceResult("a.jpg", 0, None, (1, 2, 3, 4), "happy", 0.9, {"happy": 0.9, "sad": 0.1})
    for name in ("r.jsonl", "r.csv"):
        writer = open_writer(tmp_path / name, ("happy", "sad"))
        writer.write(face)
        on_disk = writer.writing.read_text()  # read while the writer is still open
        assert "happy" in on_disk and on_disk.endswith("\n")
        assert writer.writing.parent == tmp_path  # beside the results: the rename stays on one disk
        writer.close()
        assert (tmp_path / name).read_text() == on_disk and not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ConfigError, match=".jsonl, .csv"):
        open_writer(tmp_path / "r.txt", ("happy",))


def make_folder(root: Path, astronaut: np.ndarray) -> Path:
    folder = root / "photos"
    (folder / "sub").mkdir(parents=True)
    good = demo_image().read_bytes()
    (folder / "good.jpg").write_bytes(good)
    (folder / "sub" / "cut.jpg").write_bytes(good[: len(good) // 3])
    (folder / "notes.png").write_text("this is not an image")
    cv2.imwrite(str(folder / "blank.png"), np.full((100, 100, 3), 50, np.uint8))
    (folder / "readme.txt").write_text("ignored: not an image extension")
    return folder


def test_cli_folder_keeps_going_and_exits_1(tmp_path, astronaut, tiny_checkpoint, capsys):
    folder = make_folder(tmp_path, astronaut)
    out = tmp_path / "results.csv"
    code = main(["predict", str(folder), "--model", str(tiny_checkpoint), "--output", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    printed = captured.err  # failures go to stderr, and to an errors file beside the results
    assert "failed (2, listed in" in printed and "cut.jpg" in printed and "notes.png" in printed
    assert "cut.jpg" not in captured.out
    errors = [json.loads(line) for line in (tmp_path / "results.errors.jsonl").read_text().splitlines()]
    assert sorted(Path(e["source"]).name for e in errors) == ["cut.jpg", "notes.png"]
    assert all(e["error"] for e in errors)
    rows = list(csv.DictReader(out.open()))
    # the face-less image has a row of its own: 'no face' is told apart from 'not processed'
    faces = [r for r in rows if r["status"] == "face"]
    empty = [r for r in rows if r["status"] == "no_face"]
    assert len(faces) == 1 and faces[0]["source"].endswith("good.jpg")
    assert len(empty) == 1 and empty[0]["source"].endswith("blank.png") and empty[0]["label"] == ""
    assert sum(
        float(faces[0][f"p_{n}"]) for n in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    ) == pytest.approx(1.0, abs=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "photos",
        "results.csv",
        "results.errors.jsonl",
        "tiny.pt",
    ]  # nothing else


def test_cli_video_jsonl_and_annotated_copies(tmp_path, astronaut, tiny_checkpoint, capsys):
    video = write_video(tmp_path / "clip.avi", astronaut, frames=6, faces=2)
    out, ann = tmp_path / "r.jsonl", tmp_path / "annotated"
    code = main(
        [
            "predict",
            str(video),
            str(demo_image()),
            "--model",
            str(tiny_checkpoint),
            "-o",
            str(out),
            "--save-annotated",
            str(ann),
            "--blur-faces",
            "--min-confidence",
            "0.99",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 * 2 + 1
    assert {r["track"] for r in rows if r["source"].endswith("clip.avi")} == {1, 2}
    assert all(r["label"] == "uncertain" and len(r["top2"]) == 2 for r in rows)
    assert "clip.avi: 0.6 s, a face in 100% of it; time per emotion: uncertain 100%" in captured.out
    assert "frames/s" in captured.err
    assert sorted(p.name for p in ann.iterdir()) == ["astronaut.jpg", "clip.mp4"]
    assert cv2.VideoCapture(str(ann / "clip.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 6
    blurred = read_image(ann / "astronaut.jpg")
    box = rows[-1]["box"]
    face_now = blurred[box[1] + 10 : box[3] - 10, box[0] + 10 : box[2] - 10].astype(float)
    face_before = astronaut[box[1] + 10 : box[3] - 10, box[0] + 10 : box[2] - 10].astype(float)
    assert np.abs(np.diff(face_now, axis=1)).mean() < 0.5 * np.abs(np.diff(face_before, axis=1)).mean()


def test_cli_errors_are_one_line_exit_2(tmp_path, tiny_checkpoint, capsys):
    assert main(["predict", "--model", str(tiny_checkpoint)]) == 2
    assert main(["predict", str(demo_image()), "--model", str(tiny_checkpoint), "--blur-faces"]) == 2
    assert main(["predict", str(demo_image()), "--model", str(tiny_checkpoint), "--detector", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("resemotenet predict: error:") for line in err)
    assert "valid detectors:" in err[2] and "haar" in err[2] and "mediapipe" in err[2]


def test_cli_missing_webcam_is_a_listed_failure(tmp_path, tiny_checkpoint, capsys):
    code = main(["predict", "--webcam", "57", "--model", str(tiny_checkpoint), "-o", str(tmp_path / "r.jsonl")])
    assert code == 1
    assert "webcam 57: cannot be opened" in capsys.readouterr().err


def test_demo_writes_results_and_annotated_copy(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--model", str(tiny_checkpoint), "-o", str(out)]) == 0
    assert "face 1 at" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["source"] == "astronaut.jpg"
    assert read_image(out / "astronaut.jpg").shape == (512, 512, 3)


def test_default_model_sees_the_astronaut_smile():
    from resemotenet.models.checkpoint import DEFAULT_WEIGHTS

    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"the shipped weights {DEFAULT_WEIGHTS} are not installed yet")
    faces = Predictor().predict(demo_image())
    assert [f.label for f in faces] == ["happy"]


def test_fast_shipped_model_is_48x48_and_sees_the_smile_too():
    from resemotenet.models import load_model
    from resemotenet.models.checkpoint import SHIPPED

    if not SHIPPED["fast"].is_file() or not SHIPPED["default"].is_file():
        pytest.skip("the shipped weights are not installed")
    fast, default = load_model("fast"), load_model()
    assert fast.pretrained_cfg["preprocess"]["size"] == 48 and default.pretrained_cfg["preprocess"]["size"] == 96
    assert fast.pretrained_cfg["labels"] == default.pretrained_cfg["labels"]
    assert [f.label for f in Predictor("fast").predict(demo_image())] == ["happy"]


def test_a_json_results_name_is_refused_with_the_jsonl_name_to_use(tmp_path, capsys):
    code = main(["predict", str(demo_image()), "-o", str(tmp_path / "faces.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "must end with one of .jsonl, .csv" in err[0] and str(tmp_path / "faces.jsonl") in err[0]
    assert not (tmp_path / "faces.json").exists()


def test_a_folder_of_images_and_videos_is_analysed_whole(tmp_path, astronaut, tiny_checkpoint, capsys):
    """``predict footage/``: the images, then each video in it as a video (frames tracked)."""
    folder = tmp_path / "footage"
    (folder / "day1").mkdir(parents=True)
    cv2.imwrite(str(folder / "still.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    write_video(folder / "day1" / "cam.avi", astronaut, frames=6, faces=1)
    (folder / ".hidden.avi").write_bytes(b"not looked at")
    results = list(Predictor(tiny_checkpoint).predict_source(folder))
    sources = [r.source for r in results]
    assert sources[0].endswith("still.png") and sum(s.endswith("cam.avi") for s in sources) == 6
    video_faces = [f for r in results if r.source.endswith("cam.avi") for f in r.faces]
    assert video_faces and all(f.track is not None for f in video_faces)  # tracked as a video
    out = tmp_path / "r.jsonl"
    assert main(["predict", str(folder), "--model", str(tiny_checkpoint), "-o", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {Path(r["source"]).name for r in rows} == {"still.png", "cam.avi"}


def test_a_folder_with_only_other_files_says_what_it_looked_for(tmp_path, tiny_checkpoint):
    (tmp_path / "notes.txt").write_text("x")
    (frame,) = list(Predictor(tiny_checkpoint).predict_source(tmp_path))
    assert "no image or video files" in frame.error and ".mp4" in frame.error


def test_engine_is_the_runtime_and_runner_where_it_runs(tmp_path, tiny_checkpoint, capsys):
    code = main(["predict", str(demo_image()), "--model", str(tiny_checkpoint), "--engine", "onnxruntime"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "runs .onnx files" in err[0]
    out = str(tmp_path / "r.jsonl")
    code = main(
        ["predict", str(demo_image()), "--model", str(tiny_checkpoint), "--engine", "local", "--no-progress", "-o", out]
    )
    assert code == 0 and "--runner local" in capsys.readouterr().err
