"""CenterFace: the decoder on tensors with known boxes, the shipped network on composed images,
both backends, no size kept between frames, eye alignment, and every bad input."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from resemotenet.cli import main
from resemotenet.imaging import read_image
from resemotenet.inference.faces import Detection, align_face, create_detector, crop, expand_box
from resemotenet.inference.faces.centerface import CenterFaceDetector, decode
from resemotenet.inference.sources import demo_image
from resemotenet.inference.tracking import FaceFollower
from resemotenet.utils.errors import ConfigError, DataError, MissingExtraError

PHOTO_FACE = (178, 55, 271, 179)  # CenterFace's box on the shipped photo (checked against Haar's below)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return read_image(demo_image())


@pytest.fixture(scope="module")
def det() -> CenterFaceDetector:
    return CenterFaceDetector()


def outputs(h: int, w: int, faces: list[tuple[int, int, float, float, float, float, float]]):
    """Network-like outputs at stride 4: each face = (row, col, score, height px, width px, dy, dx)."""
    heat, scale = np.zeros((1, 1, h, w), np.float32), np.zeros((1, 2, h, w), np.float32)
    offset, lms = np.zeros((1, 2, h, w), np.float32), np.zeros((1, 10, h, w), np.float32)
    for r, c, s, fh, fw, dy, dx in faces:
        heat[0, 0, r, c] = s
        scale[0, :, r, c] = np.log(fh / 4), np.log(fw / 4)
        offset[0, :, r, c] = dy, dx
        lms[0, :, r, c] = [0.3, 0.25, 0.3, 0.75, 0.55, 0.5, 0.8, 0.3, 0.8, 0.7]  # (y, x) pairs
    return heat, scale, offset, lms


def test_decode_gives_the_known_boxes_and_landmarks():
    heat, scale, offset, lms = outputs(30, 40, [(10, 20, 0.9, 40, 32, 0.25, -0.5), (25, 5, 0.6, 16, 16, 0, 0)])
    boxes, scores, points = decode(heat, scale, offset, lms, min_score=0.5)
    # centre of the first face: ((20 - 0.5 + 0.5) * 4, (10 + 0.25 + 0.5) * 4) = (80, 43)
    assert np.allclose(boxes, [[64, 23, 96, 63], [14, 94, 30, 110]], atol=1e-4)
    assert np.allclose(scores, [0.9, 0.6])
    assert np.allclose(points[0, 0], [64 + 0.25 * 32, 23 + 0.3 * 40], atol=1e-4)  # left eye (x, y)
    assert np.allclose(points[0, 4], [64 + 0.7 * 32, 23 + 0.8 * 40], atol=1e-4)  # right mouth corner
    assert decode(heat, scale, offset, lms, min_score=0.7)[0].shape == (1, 4)  # the threshold applies
    assert decode(*outputs(8, 8, []), min_score=0.5)[0].shape == (0, 4)


def test_decode_suppresses_overlapping_cells_and_keeps_separate_faces():
    faces = [
        (10, 10, 0.95, 40, 40, 0, 0),
        (10, 11, 0.8, 40, 40, 0, 0),
        (11, 10, 0.7, 40, 40, 0, 0),
        (10, 30, 0.75, 40, 40, 0, 0),
    ]
    boxes, scores, _ = decode(*outputs(20, 40, faces), min_score=0.5, nms_threshold=0.3)
    assert np.allclose(scores, [0.95, 0.75])
    assert np.allclose(boxes[:, 0], [22, 102])


def paste_faces(photo: np.ndarray, size: tuple[int, int], places: list[tuple[int, int, int]]):
    """The photo's face (with its margin) pasted at (x, y, side) places on a grey frame; true boxes."""
    import cv2

    x0, y0, x1, y1 = expand_box(PHOTO_FACE, 0.6, 512, 512)
    face = photo[y0:y1, x0:x1]
    frame = np.full((size[1], size[0], 3), 90, np.uint8)
    truth = []
    for x, y, side in places:
        frame[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        k = side / face.shape[1]
        truth.append(
            (
                (PHOTO_FACE[0] - x0) * k + x,
                (PHOTO_FACE[1] - y0) * k + y,
                (PHOTO_FACE[2] - x0) * k + x,
                (PHOTO_FACE[3] - y0) * k + y,
            )
        )
    return frame, truth


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


def test_network_finds_composed_faces_at_their_boxes(photo, det):
    frame, truth = paste_faces(photo, (640, 480), [(20, 40, 220), (330, 200, 150), (520, 30, 100)])
    found = det(frame)
    assert len(found) == 3
    for d, t in zip(found, truth):  # both left to right
        assert iou(d.box, t) > 0.6
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = d.landmarks
        assert lx < nx < rx and mlx < mrx and max(ly, ry) < ny < min(mly, mry)  # a face's layout


def test_photo_face_agrees_with_haar_and_between_backends(photo):
    haar = create_detector("haar")(photo)[0].box
    ort, cv = CenterFaceDetector(backend="onnxruntime")(photo), CenterFaceDetector(backend="opencv")(photo)
    assert [d.box for d in ort] == [d.box for d in cv] == [PHOTO_FACE]
    assert np.allclose(ort[0].landmarks, cv[0].landmarks, atol=0.5)
    assert iou(haar, PHOTO_FACE) > 0.5


@pytest.mark.parametrize("backend", ["onnxruntime", "opencv"])
def test_nothing_about_a_frame_size_is_kept(photo, backend):
    a, _ = paste_faces(photo, (640, 480), [(40, 40, 200)])
    b, _ = paste_faces(photo, (300, 520), [(20, 260, 180), (150, 30, 120)])
    used = CenterFaceDetector(backend=backend)
    for frame in (a, b, a, b[:, :290]):
        assert used(frame) == CenterFaceDetector(backend=backend)(frame)
    assert len(used(b)) == 2


def test_frame_size_limits_and_padding(photo, det):
    assert det(np.zeros((1, 1, 3), np.uint8)) == []
    assert det(np.full((31, 45), 90, np.uint8)) == []
    blob, sx, sy = CenterFaceDetector(max_side=320).blob(np.zeros((480, 640, 3), np.uint8))
    assert blob.shape == (1, 3, 256, 320) and sx == sy == 0.5  # 240 rows padded to 256
    import cv2

    big = np.full((10_000, 10_000), 90, np.uint8)  # a 100-megapixel frame is shrunk, not refused
    frame, (truth,) = paste_faces(photo, (512, 512), [(0, 0, 512)])
    big[3000:8000, 3000:8000] = cv2.resize(frame[..., 1], (5000, 5000), interpolation=cv2.INTER_LINEAR)
    (face,) = det(big)
    assert iou(face.box, [3000 + v * 5000 / 512 for v in truth]) > 0.6


def test_grey_rgba_and_16_bit_frames_are_read_like_rgb(photo, det):
    rgb = det(photo)
    gray = photo.mean(2).astype(np.uint8)
    assert det(np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])) == rgb
    assert det(photo.astype(np.uint16) * 257) == rgb
    assert [d.box for d in det(gray)] == [d.box for d in det(gray[..., None])]
    assert iou(det(gray)[0].box, rgb[0].box) > 0.8
    for bad, match in (
        (photo.astype(np.float32), "uint8 or uint16"),
        (photo[..., :2], "shaped"),
        (np.zeros((0, 5, 3), np.uint8), "shaped"),
    ):
        with pytest.raises(DataError, match=match):
            det(bad)


def test_a_face_cut_by_the_border(photo, det):
    frame, _ = paste_faces(photo, (400, 300), [(0, 0, 260)])
    cut = np.ascontiguousarray(frame[100:, 110:])  # the face's top-left part lies outside
    (d,) = det(cut)
    x0, y0, x1, y1 = d.box
    assert x0 == 0 or y0 == 0
    side = round(max(x1 - x0, y1 - y0) * 1.2)
    assert align_face(cut, d.box, ((10, 10), (60, 30)), 0.2).shape == (side, side, 3)  # full square, not clipped
    assert crop(cut, expand_box(d.box, 0.2, cut.shape[1], cut.shape[0])).shape[0] < side


def test_bad_settings_and_missing_pieces(monkeypatch, tmp_path):
    for kw in ({"max_side": 16}, {"max_side": 320.5}, {"min_score": 1.0}, {"nms_threshold": 0}, {"backend": "tpu"}):
        with pytest.raises(ConfigError, match="centerface"):
            CenterFaceDetector(**kw)
    with pytest.raises(ConfigError, match="not found"):
        CenterFaceDetector(model_path=tmp_path / "none.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    for backend in ("onnxruntime", "opencv"):
        with pytest.raises(ConfigError, match="not a loadable CenterFace model"):
            CenterFaceDetector(model_path=tmp_path / "bad.onnx", backend=backend)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match="resemotenet\\[export\\]"):
        CenterFaceDetector(backend="onnxruntime")
    assert CenterFaceDetector().backend == "opencv"  # OpenCV, a core dependency, takes over


def test_cli_detector_not_installed_is_one_line(tiny_checkpoint, capsys):
    pytest.importorskip("cv2")
    if "mediapipe" in sys.modules or _installed("mediapipe"):
        pytest.skip("mediapipe is installed here")
    assert main(["predict", str(demo_image()), "--model", str(tiny_checkpoint), "--detector", "mediapipe"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("resemotenet predict: error:") and "pip install 'resemotenet[mediapipe]'" in line


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def dots(angle_deg: float) -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    """A frame with a red and a blue 'eye' 40 px apart on a line tilted by ``angle_deg``."""
    import cv2

    img = np.full((200, 200, 3), 60, np.uint8)
    t = np.radians(angle_deg)
    eyes = ((100 - 20 * np.cos(t), 90 - 20 * np.sin(t)), (100 + 20 * np.cos(t), 90 + 20 * np.sin(t)))
    for (x, y), colour in zip(eyes, ((255, 0, 0), (0, 0, 255))):
        cv2.circle(img, (round(x), round(y)), 5, colour, -1)
    return img, eyes


def centroid(img: np.ndarray, channel: int) -> tuple[float, float]:
    ys, xs = np.nonzero(img[..., channel] > 150)
    return float(xs.mean()), float(ys.mean())


@pytest.mark.parametrize("angle", [25.0, -15.0])
def test_align_face_levels_the_eyes(angle):
    img, eyes = dots(angle)
    out = align_face(img, (60, 60, 140, 140), eyes, margin=0.2)
    assert out.shape == (96, 96, 3)
    (lx, ly), (rx, ry) = centroid(out, 0), centroid(out, 2)
    assert abs(ly - ry) < 1.5 and rx - lx > 35  # level, and still left to right


def test_align_face_keeps_the_plain_crop_below_3_degrees():
    img, eyes = dots(2.0)
    box = (60, 60, 140, 140)
    assert np.array_equal(align_face(img, box, eyes, 0.2), crop(img, expand_box(box, 0.2, 200, 200)))
    with pytest.raises(DataError, match="eye"):
        align_face(img, box, ((1.0, 2.0),), 0.2)


def test_predictor_aligns_only_when_landmarks_exist_and_align_is_on(tiny_checkpoint):
    from resemotenet.inference.predictor import Predictor

    img, eyes = dots(25.0)
    box = (60, 60, 140, 140)

    def with_points(rgb):
        return [Detection(box, 0.9, eyes)]

    plain = crop(img, expand_box(box, 0.2, 200, 200))
    aligned = Predictor(tiny_checkpoint, detector=with_points, align=True).detect(img)[0][1]
    assert not np.array_equal(aligned, plain) and aligned.shape == plain.shape
    assert np.array_equal(Predictor(tiny_checkpoint, detector=with_points).detect(img)[0][1], plain)  # off by default

    def no_points(rgb):
        return [Detection(box, 0.9)]

    assert np.array_equal(Predictor(tiny_checkpoint, detector=no_points, align=True).detect(img)[0][1], plain)


def test_follower_windows_carry_landmarks_into_frame_coordinates(photo, det):
    frame, _ = paste_faces(photo, (640, 480), [(300, 150, 200)])
    follow = FaceFollower(det, redetect_every=5)
    (whole,) = follow(frame)
    (windowed,) = follow(frame)  # the second frame searches only a window around the face
    # the window is searched at full resolution, the frame shrunk to 480 px: boxes differ a little
    assert max(abs(a - b) for a, b in zip(whole.box, windowed.box)) <= 12
    assert np.allclose(whole.landmarks, windowed.landmarks, atol=8)  # window coordinates would be ~200 px off
