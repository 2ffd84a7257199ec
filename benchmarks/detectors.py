"""Face detection recall, false boxes and time per 640x480 frame for every installed detector.

Test images, built so that the true boxes are known: FER2013 PublicTest faces (48x48, upscaled
to 56-150 px; a third of them turned by up to 25 degrees) blended (the outer 8 % of each crop faded) at
random, non-overlapping places onto 640x480 backgrounds cut from the face-free lower part of the
shipped photo (flipped, shifted, brightness changed), 3-6 faces per frame; plus the shipped photo
itself and the photo beside its mirror image (1 and 2 real faces). A true face counts as found
when a detection overlaps it with IoU >= 0.3 (one detection per face); every other detection is
a false box. Time: median ms per frame over the composed frames, after a warm-up.

    python benchmarks/detectors.py [--frames 12] [--sizes 320,480,640] [--align 200]
        [--align-detectors centerface,mediapipe]

``--align N`` also measures what eye alignment does to the shipped model's accuracy on N turned
PublicTest faces (Predictor with align on and off, same detections). Timings depend on load:
compare each row with the Haar row of the same run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from resemotenet.data.readers.fer2013 import load_arrays
from resemotenet.imaging import read_image
from resemotenet.inference.faces import create_detector
from resemotenet.inference.sources import demo_image
from resemotenet.utils.errors import ResEmoteNetError

FER = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
PHOTO_FACE = (175, 60, 270, 175)  # the astronaut's face in the 512x512 photo, read off by eye


def paste(canvas: np.ndarray, face: np.ndarray, x: int, y: int, side: int, angle: float) -> None:
    """Blend a grayscale face into ``canvas`` at (x, y), ``side`` px square, turned by ``angle``."""
    import cv2

    f = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    if angle:
        m = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
        f = cv2.warpAffine(f, m, (side, side), borderMode=cv2.BORDER_REFLECT)
    yy, xx = (np.mgrid[0:side, 0:side] + 0.5) / side
    edge = np.minimum(np.minimum(xx, 1 - xx), np.minimum(yy, 1 - yy))  # distance to the crop's border
    alpha = np.clip(edge / 0.08, 0, 1)[..., None]  # the whole crop, its outer 8 % faded into the background
    region = canvas[y : y + side, x : x + side].astype(np.float32)
    canvas[y : y + side, x : x + side] = (alpha * f[..., None] + (1 - alpha) * region).astype(np.uint8)


def scenes(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` composed 640x480 frames and their true boxes, then the shipped photo (and mirror pair)."""
    import cv2

    rng = np.random.default_rng(seed)
    arrays = load_arrays(FER)
    faces = arrays["pixels"][arrays["usage"] == 1]
    photo = read_image(demo_image())
    texture = photo[250:]  # suit, flag and wall: no face
    out = []
    for _ in range(n):
        bg = cv2.resize(texture[:, ::-1] if rng.random() < 0.5 else texture, (640, 480))
        bg = np.clip(bg.astype(np.float32) * rng.uniform(0.6, 1.2), 0, 255).astype(np.uint8)
        bg = np.roll(bg, int(rng.integers(0, 640)), axis=1).copy()
        boxes: list[tuple[int, int, int, int]] = []
        for _ in range(int(rng.integers(3, 7))):
            for _ in range(50):  # a free spot, or give up on this face
                side = int(rng.integers(56, 151))
                x, y = int(rng.integers(0, 640 - side)), int(rng.integers(0, 480 - side))
                if all(x + side <= a or c <= x or y + side <= b or d <= y for a, b, c, d in boxes):
                    angle = float(rng.uniform(-25, 25)) if rng.random() < 1 / 3 else 0.0
                    paste(bg, faces[rng.integers(len(faces))], x, y, side, angle)
                    boxes.append((x, y, x + side, y + side))
                    break
        out.append((bg, np.array(boxes, np.float32)))
    mirror = np.array([[512 - PHOTO_FACE[2] + 512, PHOTO_FACE[1], 512 - PHOTO_FACE[0] + 512, PHOTO_FACE[3]]])
    out.append((photo, np.array([PHOTO_FACE], np.float32)))
    out.append(
        (np.concatenate([photo, photo[:, ::-1]], axis=1), np.concatenate([[PHOTO_FACE], mirror]).astype(np.float32))
    )
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of x0, y0, x1, y1 boxes, broadcast in torch."""
    ta, tb = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    lt = torch.maximum(ta[:, None, :2], tb[None, :, :2])
    rb = torch.minimum(ta[:, None, 2:], tb[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)

    def area(t):
        return (t[:, 2:] - t[:, :2]).prod(-1)

    return (inter / (area(ta)[:, None] + area(tb)[None, :] - inter)).numpy()


def score(truth: np.ndarray, boxes: np.ndarray) -> tuple[int, int]:
    """(true faces found, false boxes) by greedy one-to-one matching at IoU >= 0.3."""
    if len(boxes) == 0 or len(truth) == 0:
        return 0, len(boxes)
    iou = box_iou(truth, boxes)
    found = 0
    while iou.size and iou.max() >= 0.3:
        i, j = np.unravel_index(iou.argmax(), iou.shape)
        iou[i, :], iou[:, j] = -1, -1
        found += 1
    return found, len(boxes) - found


def measure(name: str, det, frames: list[tuple[np.ndarray, np.ndarray]], timed: int) -> dict:
    hits = false = total = 0
    for img, truth in frames:
        boxes = np.array([d.box for d in det(img)], np.float32).reshape(-1, 4)
        h, f = score(truth, boxes)
        hits, false, total = hits + h, false + f, total + len(truth)
    for img, _ in frames[:2]:
        det(img)  # warm-up (onnxruntime and OpenCV plan at the first frame of a size)
    times = []
    for img, _ in frames[:timed]:
        t = time.perf_counter()
        det(img)
        times.append(time.perf_counter() - t)
    return {"name": name, "found": hits, "total": total, "false": false, "ms": 1000 * statistics.median(times)}


def align_accuracy(n: int, detector: str = "centerface", seed: int = 1) -> None:
    """Shipped model's accuracy on ``n`` PublicTest faces turned by 10-25 degrees, align on / off,
    with ``detector`` (one that gives eye landmarks) finding them."""
    from resemotenet.inference.predictor import Predictor

    rng = np.random.default_rng(seed)
    arrays = load_arrays(FER)
    idx = rng.choice(np.flatnonzero(arrays["usage"] == 1), n, replace=False)
    preds = {a: Predictor(detector=detector, align=a) for a in (True, False)}
    right = {True: 0, False: 0}
    seen = 0
    for i in idx:
        frame = np.full((256, 256, 3), 110, np.uint8)
        paste(frame, arrays["pixels"][i], 64, 64, 128, float(rng.choice([-1, 1]) * rng.uniform(10, 25)))
        res = {a: p.predict(frame) for a, p in preds.items()}
        if all(len(r) == 1 for r in res.values()):
            seen += 1
            for a, r in res.items():
                right[a] += int(r[0].label == preds[a].labels[arrays["emotion"][i]])
    print(
        f"\neye alignment, shipped model, {detector}, {seen} of {n} turned faces found once: accuracy "
        f"{100 * right[True] / max(seen, 1):.1f} % aligned, {100 * right[False] / max(seen, 1):.1f} % not aligned"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12, help="composed 640x480 frames (default: 12)")
    ap.add_argument("--sizes", default="320,480,640", help="CenterFace max_side values (default: %(default)s)")
    ap.add_argument("--align", type=int, default=0, metavar="N", help="also measure eye alignment on N faces")
    ap.add_argument(
        "--align-detectors", default="centerface", help="detectors for --align, comma-separated (default: %(default)s)"
    )
    args = ap.parse_args()
    frames = scenes(args.frames)
    torch.set_num_threads(1)
    rows = [measure("haar", create_detector("haar"), frames, args.frames)]
    for size in (int(s) for s in args.sizes.split(",")):
        for backend in ("onnxruntime", "opencv"):
            try:
                det = create_detector("centerface", max_side=size, backend=backend)
            except ResEmoteNetError as exc:
                print(f"centerface {backend}: {exc}")
                continue
            rows.append(measure(f"centerface {size} ({backend})", det, frames, args.frames))
    try:
        rows.append(measure("mediapipe", create_detector("mediapipe"), frames, args.frames))
    except ResEmoteNetError as exc:
        print(f"mediapipe: skipped ({exc})")
    cpu = platform.processor() or platform.machine()
    print(
        f"\n{len(frames)} frames ({args.frames} composed 640x480 + the photo + photo and mirror), "
        f"{rows[0]['total']} true faces; {cpu}"
    )
    print(f"{'detector':32} {'recall':>14} {'false boxes':>12} {'ms/frame':>9} {'x haar':>7}")
    for r in rows:
        print(
            f"{r['name']:32} {r['found']:>4}/{r['total']:<3} {100 * r['found'] / r['total']:5.1f} % "
            f"{r['false']:>12} {r['ms']:9.1f} {r['ms'] / rows[0]['ms']:7.2f}"
        )
    for name in args.align_detectors.split(",") if args.align else ():
        try:
            align_accuracy(args.align, name)
        except ResEmoteNetError as exc:
            print(f"eye alignment with {name}: skipped ({exc})")


if __name__ == "__main__":
    main()
