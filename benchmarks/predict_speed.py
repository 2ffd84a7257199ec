"""Inference speed on this CPU, printed as figures (not a test).

(a) Latency of classifying one face crop, batch 1 (median): the model's forward pass alone,
    and crop -> probabilities (resize, preprocess, forward, softmax), plain and with ``--tta flip``
    (the crop and its mirror image averaged), torch eager (batch norms
    folded into the convolutions, as the Predictor runs it, and not folded, side by side); the same
    through onnxruntime when ``--onnx`` is given. Target: <= 3 ms per crop.
(b) End-to-end frames/s on 640x480 frames holding one face: decode JPEG bytes, detect, crop,
    classify, with the time of each stage. Target: >= 30 frames/s. Two face searches side by
    side: the whole frame every frame (still images; ``--redetect-every 1``), and the video
    default (whole frame every 10th frame, a window around the known face in between); with
    CenterFace also the window searched at a small input size (``--window-side``: the window crop
    shrunk to that longer side, a second CenterFaceDetector; the face stays far above CenterFace's
    ~10 px minimum), to see what that would save.
(c) One still image from process start to printed result: ``resemotenet predict`` on the shipped
    photo in a fresh interpreter (median of ``--startup-runs``), beside ``python -c pass`` and the
    import of ``resemotenet.cli`` alone, and the heavy modules that import pulled in.

The frame is the shipped astronaut portrait scaled to 640 wide and cropped to 480 rows (a
real photo with real texture, so the detector does real work; the face is ~115 px). The
detector is the Predictor's default (CenterFace) unless ``--detector`` names another.

    python benchmarks/predict_speed.py [--model PATH] [--onnx PATH] [--detector NAME] [--frames 60] [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch
from _timing import cpu_name, median_seconds

from resemotenet.imaging import read_image
from resemotenet.inference.backends import TorchBackend, open_backend
from resemotenet.inference.faces import FaceFollower
from resemotenet.inference.predictor import Predictor
from resemotenet.inference.sources import demo_image


def median_ms(fn, repeats: int, warmup: int = 5) -> float:
    return median_seconds(fn, repeats, warmup) * 1000


def default_model(path: str | None) -> tuple[object, str]:
    """The given checkpoint, else the shipped model, else a random resemotenet_s (48x48 gray)."""
    from resemotenet.models import create_model, load_model
    from resemotenet.models.checkpoint import DEFAULT_WEIGHTS, make_meta

    if path:
        return path, path
    if DEFAULT_WEIGHTS.is_file():
        return load_model(None), f"shipped model ({DEFAULT_WEIGHTS.name})"
    from resemotenet.config import PreprocessSpec
    from resemotenet.labels import EMOTIONS7

    torch.manual_seed(0)
    model = create_model("resemotenet_s", num_classes=7, in_chans=1).eval()
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    model.pretrained_cfg = make_meta("resemotenet_s", {"num_classes": 7, "in_chans": 1}, spec, EMOTIONS7)
    return model, "random resemotenet_s, 48x48 grayscale (no shipped weights yet)"


def test_frame() -> np.ndarray:
    rgb = read_image(demo_image())
    return np.ascontiguousarray(cv2.resize(rgb, (640, 640), interpolation=cv2.INTER_AREA)[80:560])


def engine_name(backend: object) -> str:
    """What runs the model: torch eager, one ONNX engine, or auto's choice per batch size."""
    if isinstance(backend, TorchBackend):
        return "torch eager"
    choice = getattr(backend, "choice", None)
    if choice:
        return f"auto: {choice['single']} for one face, {choice['batch']} for batches"
    return type(backend).__name__.replace("Backend", "").replace("Onnx", "onnxruntime").lower()


def crop_latency(pred: Predictor, face: np.ndarray, repeats: int, label: str) -> None:
    spec = pred.spec
    x = torch.randn(1, spec.channels, spec.size, spec.size)
    fwd = median_ms(lambda: pred.backend(x), repeats)
    full = median_ms(lambda: pred.classify([face]), repeats)
    print(f"{label:28s} forward {fwd:6.2f} ms   crop -> probabilities {full:6.2f} ms   (target <= 3 ms)")


class WindowSized:
    """A detector that searches whole frames with ``full`` and smaller crops (FaceFollower's
    windows) with ``small``."""

    def __init__(self, full, small, frame_shape: tuple[int, int]):
        self.full, self.small, self.frame_shape = full, small, frame_shape

    def __call__(self, rgb: np.ndarray):
        return (self.full if rgb.shape[:2] == self.frame_shape else self.small)(rgb)


def end_to_end(
    pred: Predictor, jpeg: bytes, frames: int, redetect_every: int, window_side: int = 0, label: str = ""
) -> None:
    buf = np.frombuffer(jpeg, np.uint8)
    search = pred.detector
    if window_side:
        from resemotenet.inference.centerface import CenterFaceDetector

        search = WindowSized(pred.detector, CenterFaceDetector(max_side=window_side), (480, 640))
    detector = FaceFollower(search, redetect_every)
    stages = {"decode": [], "detect": [], "classify": []}
    faces_found = []
    for _ in range(3):  # warm-up
        pred.classify([c for _, c in pred.detect(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))])
    start = time.perf_counter()
    for _ in range(frames):
        t0 = time.perf_counter()
        rgb = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        t1 = time.perf_counter()
        faces = pred.detect(rgb, detector)
        t2 = time.perf_counter()
        pred.classify([c for _, c in faces])
        t3 = time.perf_counter()
        for key, a, b in (("decode", t0, t1), ("detect", t1, t2), ("classify", t2, t3)):
            stages[key].append((b - a) * 1000)
        faces_found.append(len(faces))
    fps = frames / (time.perf_counter() - start)
    detail = "  ".join(f"{k} {statistics.median(v):.1f} ms" for k, v in stages.items())
    win = (f", window at {window_side} px" if window_side else "") + (f", {label}" if label else "")
    print(
        f"whole-frame search every {redetect_every:2d} frame(s){win}: {fps:6.1f} frames/s; "
        f"faces per frame {min(faces_found)}-{max(faces_found)}; median per frame: {detail}"
    )


def startup(runs: int, model: str | None) -> None:
    """Wall seconds from process start to the printed result, in fresh interpreters."""

    def wall(cmd: list[str]) -> float:
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        predict = [sys.executable, "-m", "resemotenet", "predict", str(demo_image()), "-o", f"{tmp}/r.jsonl"]
        if model:
            predict += ["--model", model]
        rows = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import resemotenet.cli": [sys.executable, "-c", "import resemotenet.cli"],
            "resemotenet predict (one photo)": predict,
        }
        for name, cmd in rows.items():
            wall(cmd)  # one untimed run: the file cache
            print(f"{name:34s} {statistics.median(wall(cmd) for _ in range(runs)):6.2f} s (median of {runs})")
    probe = "import sys, resemotenet.cli; print(' '.join(m for m in ('torch', 'cv2', 'matplotlib', 'onnx', 'onnxruntime', 'openvino') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip()
    print(f"heavy modules loaded by importing resemotenet.cli: {loaded or 'none'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint or .onnx (default: shipped model, else a random resemotenet_s)")
    ap.add_argument("--onnx", help="also time this ONNX export of the model with onnxruntime")
    ap.add_argument("--detector", help="face detector (default: the Predictor's)")
    ap.add_argument("--window-side", type=int, default=128, help="centerface: also time windows at this size")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--startup-runs", type=int, default=5, help="(c): fresh processes timed; 0 skips it")
    args = ap.parse_args()
    model, desc = default_model(args.model)
    detector = {"detector": args.detector} if args.detector else {}
    pred = Predictor(model, **detector)
    print(f"{cpu_name()}, {time.strftime('%Y-%m-%d')}; detector {getattr(pred.detector, 'name', pred.detector)}")
    print(f"model: {desc}; input {pred.spec.size}x{pred.spec.size}x{pred.spec.channels}")
    print(
        f"torch {torch.__version__} {torch.get_num_threads()} thread(s), OpenCV {cv2.__version__} "
        f"{cv2.getNumThreads()} thread(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    frame = test_frame()
    found = pred.detect(frame)
    face = found[0][1] if found else frame[100:260, 260:420]
    print(f"\n(a) one face crop, batch 1 (median of {args.repeats} runs)")
    crop_latency(pred, face, args.repeats, engine_name(pred.backend))
    crop_latency(Predictor(pred.backend, tta="flip"), face, args.repeats, engine_name(pred.backend) + ", --tta flip")
    if isinstance(pred.backend, TorchBackend):
        crop_latency(Predictor(open_backend(model, fuse=False)), face, args.repeats, "torch eager, BN not folded")
    if args.onnx:
        onnx = Predictor(args.onnx)
        crop_latency(onnx, face, args.repeats, engine_name(onnx.backend))
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(
        f"\n(b) end to end, 640x480, {args.frames} frames: decode JPEG ({len(jpeg) // 1024} KiB), "
        f"detect, crop, classify ({engine_name(pred.backend)})"
    )
    for every in (1, 10):
        end_to_end(pred, jpeg.tobytes(), args.frames, every)
    end_to_end(Predictor(pred.backend, tta="flip", **detector), jpeg.tobytes(), args.frames, 10, label="--tta flip")
    if getattr(pred.detector, "name", "") == "centerface" and args.window_side:
        end_to_end(pred, jpeg.tobytes(), args.frames, 10, args.window_side)
    if args.startup_runs:
        print("\n(c) one still image, process start to printed result")
        startup(args.startup_runs, args.model)


if __name__ == "__main__":
    main()
