"""Face detectors: the registry, Haar on the shipped photo, boxes and margins."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest

from resemotenet.imaging import read_image
from resemotenet.inference.faces import Detection, HaarDetector, create_detector, expand_box, list_detectors
from resemotenet.inference.faces.mediapipe import _blazeface_points
from resemotenet.inference.sources import demo_image
from resemotenet.inference.tracking import FaceFollower
from resemotenet.utils.errors import ConfigError, MissingExtraError

# Eileen Collins' face in the 512x512 portrait: centre of the face, measured once by eye.
FACE_CENTRE = (222, 113)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return read_image(demo_image())


def test_registry_lists_the_four_detectors():
    assert list_detectors() == ["centerface", "haar", "mediapipe", "yunet"]


def test_unknown_detector_lists_valid_ones():
    with pytest.raises(
        ConfigError, match="unknown face detector 'dlib'; valid detectors: centerface, haar, mediapipe, yunet"
    ):
        create_detector("dlib")


def test_bad_detector_option_is_a_config_error():
    with pytest.raises(ConfigError, match="haar"):
        create_detector("haar", min_faces=3)


def test_haar_finds_exactly_the_astronauts_face(astronaut):
    dets = create_detector("haar")(astronaut)
    assert len(dets) == 1
    (x0, y0, x1, y1), score = dets[0].box, dets[0].score
    assert all(isinstance(v, int) for v in dets[0].box)
    assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512
    assert x0 < FACE_CENTRE[0] < x1 and y0 < FACE_CENTRE[1] < y1
    assert 70 <= x1 - x0 <= 130  # the face is ~95 px wide
    assert score == 1.0


def test_haar_accepts_grayscale_and_finds_the_same_face(astronaut):
    import cv2

    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    det = HaarDetector()
    assert [d.box for d in det(gray)] == [d.box for d in det(astronaut)]


def test_haar_min_face_bounds_the_face_size(astronaut):
    assert create_detector("haar", min_face=200)(astronaut) == []  # the face is ~95 px
    assert len(create_detector("haar", min_face=40)(astronaut)) == 1


def test_no_face_in_a_blank_or_noisy_frame():
    det = HaarDetector()
    assert det(np.full((480, 640, 3), 128, np.uint8)) == []
    rng = np.random.default_rng(0)
    assert det(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) == []


def test_haar_reports_every_face_left_to_right(astronaut):
    pair = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)  # the photo and its mirror
    dets = HaarDetector()(pair)
    assert len(dets) == 2
    assert dets[0].box[0] < 512 <= dets[1].box[0]


def test_haar_rejects_bad_settings():
    with pytest.raises(ConfigError):
        HaarDetector(scale_factor=1.0)
    with pytest.raises(ConfigError, match="not a readable Haar cascade"):
        HaarDetector(cascade="/nonexistent/cascade.xml")


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is not None, reason="mediapipe is installed")
def test_mediapipe_missing_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"resemotenet\[mediapipe\]"):
        create_detector("mediapipe")


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="mediapipe is not installed")
def test_mediapipe_finds_the_astronauts_face(astronaut):
    dets = create_detector("mediapipe")(astronaut)
    assert len(dets) == 1
    x0, y0, x1, y1 = dets[0].box
    assert x0 < FACE_CENTRE[0] < x1 and y0 < FACE_CENTRE[1] < y1
    (lx, ly), (rx, ry) = dets[0].landmarks[:2]
    assert x0 < lx < FACE_CENTRE[0] < rx < x1 and y0 < ly < FACE_CENTRE[1] and y0 < ry < FACE_CENTRE[1]


def _blaze(*points):
    kps = [SimpleNamespace(x=x, y=y) for x, y in points]
    return SimpleNamespace(location_data=SimpleNamespace(relative_keypoints=kps))


def test_blazeface_keypoints_become_landmarks_eyes_first_left_first():
    # BlazeFace's order: the subject's right eye (on the image's left), left eye, nose tip, mouth
    # centre, two ears. Relative coordinates scale to pixels; the ears are dropped.
    det = _blaze((0.4, 0.3), (0.6, 0.32), (0.5, 0.45), (0.5, 0.6), (0.3, 0.35), (0.7, 0.35))
    pts = _blazeface_points(det, 200, 100)
    assert np.allclose(pts, [(80, 30), (120, 32), (100, 45), (100, 60)])
    # eyes given right to left come back left first
    flipped = _blazeface_points(_blaze((0.6, 0.32), (0.4, 0.3), (0.5, 0.45), (0.5, 0.6)), 200, 100)
    assert np.allclose(flipped[:2], [(80, 30), (120, 32)])
    assert _blazeface_points(_blaze((0.5, 0.5)), 200, 100) is None


def test_yunet_needs_a_model_file(tmp_path):
    with pytest.raises(ConfigError, match="--yunet-model"):
        create_detector("yunet")
    with pytest.raises(ConfigError, match="not found"):
        create_detector("yunet", model_path=tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a loadable YuNet model"):
        create_detector("yunet", model_path=junk)


def test_expand_box_squares_grows_and_clips():
    # a 40x20 box: squared to 40x40 around its centre (30, 20), grown by half to 60x60, clipped
    assert expand_box((10, 10, 50, 30), 0.5, 100, 100) == (0, 0, 60, 50)
    assert expand_box((40, 40, 60, 60), 0.0, 100, 100) == (40, 40, 60, 60)
    assert expand_box((40, 40, 60, 60), 0.2, 100, 100) == (38, 38, 62, 62)
    assert expand_box((90, 90, 100, 100), 1.0, 100, 100) == (85, 85, 100, 100)
    assert expand_box((10, 10, 50, 30), 0.0, 100, 100, square=False) == (10, 10, 50, 30)
    with pytest.raises(ConfigError):
        expand_box((0, 0, 10, 10), -0.1, 100, 100)


def test_a_plain_callable_is_a_detector(tiny_checkpoint, astronaut):
    from resemotenet.inference.predictor import Predictor

    fixed = Predictor(tiny_checkpoint, detector=lambda rgb: [Detection((10, 20, 60, 70))])
    faces = fixed.predict(astronaut)
    assert [f.box for f in faces] == [(10, 20, 60, 70)]


class _Spy:
    """A detector that finds one 40x40 face at a fixed place of the full frame, in whatever
    window of the frame it is shown (the window's offset is recovered from the pixel values)."""

    def __init__(self, face=(100, 60, 140, 100), lost_after: int | None = None):
        self.face, self.shapes, self.lost_after = face, [], lost_after

    def __call__(self, rgb):
        self.shapes.append(rgb.shape[:2])
        if self.lost_after is not None and len(self.shapes) > self.lost_after:
            return []
        oy, ox = int(rgb[0, 0, 0]), int(rgb[0, 0, 1])  # the frame holds y in channel 0, x in 1
        x0, y0, x1, y1 = self.face
        if x0 < ox or y0 < oy or x1 > ox + rgb.shape[1] or y1 > oy + rgb.shape[0]:
            return []
        return [Detection((x0 - ox, y0 - oy, x1 - ox, y1 - oy), 0.9)]


def coordinate_frame(h=200, w=240):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy, xx, np.zeros_like(xx)], -1).astype(np.uint8)


def test_follower_searches_whole_frames_every_n_and_windows_between():
    spy = _Spy()
    follow = FaceFollower(spy, redetect_every=3)
    frame = coordinate_frame()
    boxes = [follow(frame) for _ in range(7)]
    assert all(b == [Detection((100, 60, 140, 100), 0.9)] for b in boxes)  # frame coordinates
    whole = [i for i, s in enumerate(spy.shapes) if s == (200, 240)]
    assert whole == [0, 3, 6]
    assert all(s == (80, 80) for i, s in enumerate(spy.shapes) if i not in whole)  # 2x the face


def test_follower_goes_back_to_whole_frames_when_the_face_is_lost():
    spy = _Spy(lost_after=2)
    follow = FaceFollower(spy, redetect_every=100)
    frame = coordinate_frame()
    assert [len(follow(frame)) for _ in range(4)] == [1, 1, 0, 0]
    assert spy.shapes == [(200, 240), (80, 80), (80, 80), (200, 240)]


def test_follower_every_frame_is_the_plain_detector(astronaut):
    det = HaarDetector()
    follow = FaceFollower(det, redetect_every=1)
    assert [d.box for d in follow(astronaut)] == [d.box for d in det(astronaut)]
    with pytest.raises(ConfigError, match="redetect_every"):
        FaceFollower(det, redetect_every=0)


def test_follower_keeps_one_box_where_windows_overlap():
    # two known faces whose windows both hold the same face: reported once
    follow = FaceFollower(_Spy(), redetect_every=10)
    follow.frames, follow.boxes = 1, [(100, 60, 140, 100), (104, 62, 144, 102)]
    assert follow(coordinate_frame()) == [Detection((100, 60, 140, 100), 0.9)]


def test_follower_follows_the_real_face_in_the_photo(astronaut):
    follow = FaceFollower(HaarDetector(), redetect_every=5)
    first = follow(astronaut)[0].box
    again = follow(astronaut)[0].box  # found inside the window around the first box
    assert max(abs(a - b) for a, b in zip(first, again)) <= 6
