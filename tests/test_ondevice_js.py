"""The page's on-device geometry (``serve/static/geometry.js``) against the Python it copies, without a
browser: the ES module runs under Node on fixed synthetic CenterFace outputs and faces, with the
numbers of the service's GET /v1/on-device, and its boxes, landmarks and crop plans must be the
ones ``centerface.decode``, ``CenterFaceDetector`` and ``Predictor.frame_crop`` give. Skipped
when ``node`` is not installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from resemotenet.inference.faces.base import Detection
from resemotenet.inference.faces.centerface import CenterFaceDetector, decode
from resemotenet.inference.predictor import Predictor

STATIC = Path(__file__).resolve().parents[1] / "src" / "resemotenet" / "serve" / "static"
WIDTH, HEIGHT = 1000, 700  # shrunk to 480 x 336 for the detector, padded to 480 x 352

DRIVER = """
import {readFileSync} from "node:fs";
import * as G from "./geometry.mjs";

const inp = JSON.parse(readFileSync(process.argv[2], "utf8"));
const det = inp.info.detector, f32 = (a) => Float32Array.from(a), o = inp.outputs;
const outputs = {heatmap: f32(o.heatmap), scale: f32(o.scale), offset: f32(o.offset), landmarks: f32(o.landmarks)};
const input = G.detectorInput(inp.width, inp.height, det);
const decoded = G.decode(outputs, inp.rows, inp.cols, det);
const faces = G.toFrame(decoded, input, inp.width, inp.height);
const plans = inp.cases.map((c) => G.framePlan(c.face, c.framing, inp.width, inp.height));
console.log(JSON.stringify({input, decoded, faces, plans, rounds: inp.rounds.map(G.pyRound)}));
"""


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node") or shutil.which("nodejs")
    if not exe:
        pytest.skip("node is not installed (apt-get install nodejs): the page's geometry is not checked")
    return exe


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor("fast", detector=CenterFaceDetector())


@pytest.fixture(scope="module")
def info(predictor) -> dict:
    pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'resemotenet[serve]'")
    from resemotenet.serve.ondevice import OnDevice

    return json.loads(json.dumps(OnDevice("fast", predictor).info()))  # as the page receives it


def run_js(node: str, tmp_path: Path, payload: dict) -> dict:
    shutil.copy(STATIC / "geometry.js", tmp_path / "geometry.mjs")  # Node 20 reads a .js file as CommonJS
    (tmp_path / "driver.mjs").write_text(DRIVER)
    (tmp_path / "input.json").write_text(json.dumps(payload))
    done = subprocess.run(
        [node, str(tmp_path / "driver.mjs"), str(tmp_path / "input.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def synthetic_outputs(rows: int, cols: int, det: dict) -> list[np.ndarray]:
    """CenterFace's four outputs with 13 faces: overlapping pairs (one of each must go in the
    non-maximum suppression), faces at the frame's border, tilted and level eyes, and a cell just
    below the score threshold; everything else noise below it."""
    rng = np.random.default_rng(7)
    n = rows * cols
    heat = rng.uniform(0, det["min_score"] * 0.9, (rows, cols))
    scale = rng.normal(1.5, 0.3, (2, rows, cols))
    offset = rng.uniform(0, 1, (2, rows, cols))
    marks = rng.uniform(0.2, 0.8, (10, rows, cols))
    faces = [  # row, col, score, face height and width in network pixels, eye tilt (y of right - left)
        (20, 30, 0.95, 60, 50, 0.0),
        (20, 31, 0.90, 62, 50, 0.01),  # the same face one cell on: suppressed
        (30, 80, 0.85, 90, 70, 0.12),
        (33, 84, 0.60, 90, 70, 0.0),  # overlaps the one above by less than the NMS threshold
        (60, 10, 0.80, 40, 40, -0.2),
        (80, 115, 0.75, 70, 60, 0.05),  # at the right and bottom edge: clipped
        (2, 2, 0.70, 50, 45, 0.3),  # at the top-left corner
        (45, 50, 0.65, 30, 25, -0.03),
        (70, 60, 0.55, 120, 100, 0.02),
        (10, 100, 0.5, 36, 30, 0.09),
        (50, 95, det["min_score"] * 0.999, 50, 50, 0.0),  # below the threshold: no face
        (75, 30, 0.45, 55, 44, -0.08),
        (40, 20, 0.40, 44, 40, 0.15),
    ]
    for r, c, score, h, w, tilt in faces:
        heat[r, c] = score
        scale[:, r, c] = np.log(np.array([h, w]) / det["stride"]) + rng.normal(0, 0.02, 2)
        marks[0:4, r, c] = (0.38, 0.3, 0.38 + tilt, 0.7)  # (y, x) of the left eye, then of the right
    assert n == heat.size
    return [
        heat[None, None].astype(np.float32),
        scale[None].astype(np.float32),
        offset[None].astype(np.float32),
        marks[None].astype(np.float32),
    ]


FRAMINGS = [
    {"margin": 0.0, "square": False, "shift_y": 0.0, "align": False},
    {"margin": 0.25, "square": True, "shift_y": 0.0, "align": False},
    {"margin": 0.4, "square": False, "shift_y": 0.125, "align": False},  # 12.5 px on a 100 px face: even
    {"margin": 0.2, "square": True, "shift_y": -0.11, "align": True},
    {"margin": 0.35, "square": False, "shift_y": 0.0, "align": True},
]

HANDMADE = [  # faces with known eye tilts: level, just below and above min_angle, steep, at the border
    Detection((100, 100, 180, 200), 0.9, ((120.0, 140.0), (160.0, 140.0))),
    Detection((300, 200, 360, 260), 0.9, ((310.0, 220.0), (350.0, 222.0))),  # 2.9 degrees
    Detection((500, 300, 580, 390), 0.9, ((510.0, 320.0), (570.0, 324.0))),  # 3.8 degrees
    Detection((700, 400, 800, 520), 0.9, ((720.0, 450.0), (780.0, 420.0))),  # -26.6 degrees
    Detection((0, 0, 70, 90), 0.9, ((15.0, 30.0), (55.0, 40.0))),
    Detection((930, 610, 1000, 700), 0.9, ((945.0, 640.0), (985.0, 625.0))),
    Detection((400, 100, 451, 177), 0.9, None),  # no landmarks: never levelled
]


def coded_frame() -> np.ndarray:
    """A frame whose pixels tell where they are (for crops) and vary smoothly (for warps)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    return np.stack(
        [128 + 100 * np.sin(x / 37), 128 + 100 * np.cos(y / 23), 255 * (x + 2 * y) / (WIDTH + 2 * HEIGHT)], -1
    ).astype(np.uint8)


def test_box_decode_matches_centerface(node, info, tmp_path, monkeypatch):
    det = info["detector"]
    detector = CenterFaceDetector(**{k: det[k] for k in ("max_side", "min_score", "nms_threshold")})
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    blob, sx, sy = detector.blob(rgb)
    rows, cols = blob.shape[2] // det["stride"], blob.shape[3] // det["stride"]
    outputs = synthetic_outputs(rows, cols, det)
    monkeypatch.setattr(detector, "forward", lambda b: outputs)
    boxes, scores, points = decode(*outputs, det["min_score"], det["nms_threshold"])
    faces = detector(rgb)
    rounds = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 3.5000001, 7.0, -0.0]
    js = run_js(
        node,
        tmp_path,
        {
            "info": info,
            "width": WIDTH,
            "height": HEIGHT,
            "rows": rows,
            "cols": cols,
            "outputs": {k: a.ravel().tolist() for k, a in zip(("heatmap", "scale", "offset", "landmarks"), outputs)},
            "cases": [],
            "rounds": rounds,
        },
    )
    assert js["rounds"] == [round(v) for v in rounds]  # Python's rounding: halves to even
    size = js["input"]
    assert (size["pw"], size["ph"]) == (blob.shape[3], blob.shape[2])
    assert size["sx"] == pytest.approx(sx) and size["sy"] == pytest.approx(sy)
    assert 8 <= len(boxes) < 12  # the overlapping twin and the cell below the threshold are gone
    assert len(js["decoded"]) == len(boxes)
    np.testing.assert_allclose([f["box"] for f in js["decoded"]], boxes, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose([f["score"] for f in js["decoded"]], scores, rtol=1e-6)
    np.testing.assert_allclose([f["points"] for f in js["decoded"]], points, rtol=1e-5, atol=1e-3)
    assert [tuple(f["box"]) for f in js["faces"]] == [d.box for d in faces]  # clipped, whole pixels, sorted
    np.testing.assert_allclose([f["landmarks"] for f in js["faces"]], [d.landmarks for d in faces], atol=1e-3)


def test_crop_framing_matches_the_predictor(node, info, predictor, tmp_path):
    import cv2

    rgb = coded_frame()
    cases = []
    for framing in FRAMINGS:
        for d in HANDMADE:
            cases.append((d, {**framing, "min_angle": info["framing"]["min_angle"]}))
    payload_cases = [
        {
            "face": {"box": list(d.box), "landmarks": None if d.landmarks is None else [list(p) for p in d.landmarks]},
            "framing": f,
        }
        for d, f in cases
    ]
    js = run_js(
        node,
        tmp_path,
        {
            "info": info,
            "width": WIDTH,
            "height": HEIGHT,
            "rows": 0,
            "cols": 0,
            "cases": payload_cases,
            "rounds": [],
            "outputs": {k: [] for k in ("heatmap", "scale", "offset", "landmarks")},
        },
    )
    kinds = {"crop": 0, "levelled": 0}
    for (d, f), plan in zip(cases, js["plans"], strict=True):
        predictor.margin, predictor.square, predictor.shift_y, predictor.align = (
            f["margin"],
            f["square"],
            f["shift_y"],
            f["align"],
        )
        want = predictor.frame_crop(rgb, d)
        if "matrix" in plan:
            kinds["levelled"] += 1
            side = plan["side"]
            got = cv2.warpAffine(
                rgb, np.array(plan["matrix"]), (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            assert got.shape == want.shape, (d, f)
            assert np.abs(got.astype(int) - want).max() <= 1, (d, f)
        else:
            kinds["crop"] += 1
            x0, y0, x1, y1 = plan["box"]
            np.testing.assert_array_equal(rgb[y0:y1, x0:x1], want, err_msg=f"{d} {f}")
    assert kinds["crop"] > 10 and kinds["levelled"] > 5, kinds  # both of align_face's branches were compared


def test_the_page_keeps_no_constant_of_its_own(info):
    """Every number of the page's pipeline arrives in GET /v1/on-device; what is left in the two
    files is arithmetic (halves, RGBA and RGB layout, degrees, bytes), not a setting."""
    allowed = {"0", "1", "2", "3", "4", "0.5", "10", "180", "255", "1000"}
    for name in ("geometry.js", "ondevice.js"):
        code = re.sub(r"//.*", "", (STATIC / name).read_text())
        numbers = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?", code))
        assert numbers <= allowed, (name, numbers - allowed)
    assert {"log_scale_limit", "stride", "multiple", "max_side", "min_score", "nms_threshold", "outputs"} <= set(
        info["detector"]
    )
    assert {"margin", "square", "shift_y", "align", "min_angle"} <= set(info["framing"])
    assert {"size", "channels", "mean", "std", "luma"} <= set(info["preprocess"])
    assert {"iou_threshold", "max_age"} <= set(info["tracker"])
