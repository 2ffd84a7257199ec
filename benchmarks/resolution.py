"""Does a model trained on small faces enlarged to its input lose accuracy on sharper faces, and does
reducing a crop to the training faces' resolution first (``preprocess.source_size``) win it back?

FER2013's faces are 48x48; the 96x96 ``default`` was trained on them enlarged (bilinear), so it has
never seen detail finer than 48 pixels can hold, while a camera's face crop of 100-300 pixels has
it. No sharp, labelled faces are stored here, so this measures a stand-in on PublicTest (validation
only): each 48x48 face is enlarged with Lanczos and sharpened (unsharp mask, amount 1) to a side of
96 or 192 pixels, a crop with more high-frequency content than training ever showed. Each set is
scored through the model's preprocessing (``FaceTransform``, as ``predict`` uses it) with and
without the reduction. The plain bilinear enlargement to 96 (the training inputs themselves) is the
control: there the reduction should cost nothing.

    python benchmarks/resolution.py [--model default] [--limit N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013"


def stand_ins(faces: np.ndarray, side: int, sharpen: float) -> list[np.ndarray]:
    import cv2

    interp = cv2.INTER_LINEAR if sharpen == 0 else cv2.INTER_LANCZOS4
    out = []
    for face in faces:
        big = cv2.resize(face, (side, side), interpolation=interp)
        if sharpen:
            soft = cv2.GaussianBlur(big, (0, 0), 1.5 * side / 96).astype(np.float32)
            big = np.clip(big.astype(np.float32) * (1 + sharpen) - sharpen * soft, 0, 255).astype(np.uint8)
        out.append(big)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default")
    p.add_argument("--fer2013", default=str(DATA))
    p.add_argument("--limit", type=int)
    p.add_argument("--source-size", type=int, default=48, help="the reduction to compare (default 48)")
    args = p.parse_args(argv)

    from _timing import cpu_name

    from resemotenet.cli.backend import open_model
    from resemotenet.data import load
    from resemotenet.data.dataset import materialize
    from resemotenet.engine.evaluator import predict_probs

    model, card = open_model(args.model)
    spec = card.preprocess
    with_reduction = dataclasses.replace(spec, source_size=args.source_size)
    without = dataclasses.replace(spec, source_size=None)
    val = load(f"fer2013:{args.fer2013}", limit=args.limit)["val"]
    faces = materialize(val, 48)
    print(
        f"# {args.model} ({spec.size}x{spec.size}); FER2013 PublicTest, {len(val)} faces; {time.strftime('%Y-%m-%d')}; {cpu_name()}"
    )
    print(f"| faces given to the model | straight to {spec.size} | reduced to {args.source_size} first |")
    print("|---|---|---|")
    for label, side, sharpen in (
        (f"bilinear to {spec.size} (the training inputs; control)", spec.size, 0.0),
        ("Lanczos + unsharp mask to 96", 96, 1.0),
        ("Lanczos + unsharp mask to 192", 192, 1.0),
    ):
        crops = stand_ins(faces, side, sharpen)
        row = []
        for s in (without, with_reduction):  # a list of crops: each goes through resize_face, as in predict
            row.append(100 * float((predict_probs(model, crops, s).argmax(1) == val.labels).mean()))
        print(f"| {label} | {row[0]:.2f} % | {row[1]:.2f} % |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
