"""Crop framing with the detector in the loop: accuracy of one model on FER2013 faces pasted into
larger frames and found by each detector, for several framings, against the tight crops.

Construction (true boxes known): ``--n`` FER2013 **PublicTest** faces (validation: framing is a
choice, so it is chosen on validation data only), each upscaled to 96-160 px and blended (outer
8 % faded) into a 320x320 background cut from the face-free lower part of the shipped photo
(``benchmarks/detectors.py`` builds its scenes the same way). The *tight* crop is the pasted square
itself, exactly what the model would see from a perfect FER2013-style detector. For each detector
the detection that overlaps the true square best (IoU >= 0.3) is kept; faces a detector misses
are left out of its row (its count is printed). A framing is (margin, shift_y) as in the model
card: the box is shifted down by ``shift_y`` of its height, then grown by ``margin`` on every side
and made square.

    python benchmarks/framing.py [--model default] [--n 400] [--detectors haar,centerface]
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from detectors import FER, box_iou, paste  # noqa: E402

from resemotenet.data.readers.fer2013 import load_arrays  # noqa: E402
from resemotenet.imaging import read_image  # noqa: E402
from resemotenet.inference.faces import create_detector, crop, expand_box  # noqa: E402
from resemotenet.inference.predictor import Predictor  # noqa: E402
from resemotenet.inference.sources import demo_image  # noqa: E402

MARGINS = (0.0, 0.1, 0.2, 0.3, 0.4)
SHIFTS = (-0.1, 0.0, 0.1)


def frames(n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(320x320 RGB frames, true boxes (n, 4), FER2013 labels (n,))."""
    import cv2

    rng = np.random.default_rng(seed)
    arrays = load_arrays(FER)
    idx = rng.choice(np.flatnonzero(arrays["usage"] == 1), n, replace=False)
    texture = read_image(demo_image())[250:]
    out, boxes = [], []
    for i in idx:
        bg = cv2.resize(texture[:, ::-1] if rng.random() < 0.5 else texture, (320, 320))
        bg = np.clip(bg.astype(np.float32) * rng.uniform(0.6, 1.2), 0, 255).astype(np.uint8)
        side = int(rng.integers(96, 161))
        x, y = int(rng.integers(0, 320 - side)), int(rng.integers(0, 320 - side))
        paste(bg, arrays["pixels"][i], x, y, side, 0.0)
        out.append(bg)
        boxes.append((x, y, x + side, y + side))
    return out, np.array(boxes, np.float32), arrays["emotion"][idx]


def framed(rgb: np.ndarray, box: tuple[int, ...], margin: float, shift_y: float) -> np.ndarray:
    x0, y0, x1, y1 = box
    dy = int(round(shift_y * (y1 - y0)))
    return crop(rgb, expand_box((x0, y0 + dy, x1, y1 + dy), margin, rgb.shape[1], rgb.shape[0], square=True))


def accuracy(pred: Predictor, crops: list[np.ndarray], labels: np.ndarray) -> float:
    return float((pred.classify(crops).argmax(1) == labels).mean()) if len(crops) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--detectors", default="haar,centerface")
    args = ap.parse_args()
    torch.set_num_threads(1)
    imgs, truth, labels = frames(args.n)
    pred = Predictor(args.model, detector="haar")
    tight_all = accuracy(pred, [crop(im, tuple(int(v) for v in b)) for im, b in zip(imgs, truth)], labels)
    print(f"model {args.model}; {args.n} PublicTest faces; tight crops: {100 * tight_all:.2f} %")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    header = "detector    found  tight | " + " | ".join(f"m{m:.1f}/s{s:+.1f}" for s in SHIFTS for m in MARGINS)
    print(header)
    for name in args.detectors.split(","):
        det = create_detector(name)
        kept, boxes, geometry = [], [], []
        for i, (im, t) in enumerate(zip(imgs, truth)):
            found = np.array([d.box for d in det(im)], np.float32).reshape(-1, 4)
            if len(found) == 0:
                continue
            iou = box_iou(t[None], found)[0]
            if iou.max() < 0.3:
                continue
            b = found[int(iou.argmax())]
            kept.append(i)
            boxes.append(tuple(int(v) for v in b))
            side = t[2] - t[0]
            geometry.append(((b[2] - b[0]) / side, ((b[1] + b[3]) / 2 - (t[1] + t[3]) / 2) / side))
        y = labels[kept]
        tight = accuracy(pred, [crop(imgs[i], tuple(int(v) for v in truth[i])) for i in kept], y)
        cells = {}
        for s in SHIFTS:
            for m in MARGINS:
                cells[(m, s)] = accuracy(pred, [framed(imgs[i], b, m, s) for i, b in zip(kept, boxes)], y)
        best = max(cells, key=cells.get)
        scale, dy = np.median(np.array(geometry), 0) if geometry else (float("nan"), float("nan"))
        print(
            f"{name:10s} {len(kept):5d} {100 * tight:6.2f} | "
            + " | ".join(f"{100 * cells[(m, s)]:9.2f}" for s in SHIFTS for m in MARGINS)
        )
        print(
            f"  {name}: best framing on PublicTest margin {best[0]}, shift_y {best[1]:+.1f} "
            f"({100 * cells[best]:.2f} % vs {100 * tight:.2f} % tight); median box side {scale:.2f} x the "
            f"true square, centre {dy:+.2f} of its side below it"
        )


if __name__ == "__main__":
    main()
