"""What face-api's FaceExpressionNet would teach: its reading of FER2013's Training faces (the soft
labels ``faceapi_teacher`` blends into the targets) and of PublicTest, against FER2013's labels.

Per class: the faces FER2013 labels so, how many of them the net calls so (recall), how many faces
it calls so in all and how many of those are right (precision), and the mean probability mass the
tempered teacher puts on the class. The Training probabilities are the ones training uses
(``engine.soft_targets.teacher_probs``, from the cache when a run or this script has scored them;
the first time about 10 minutes on 2 cores), so running this before a ``faceapi_teacher`` run fills
its cache. Never reads PrivateTest.

    python benchmarks/faceapi_teacher.py --faceapi ../npm/package/model
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--faceapi", required=True, help="@vladmandic/face-api@1.7.15's model folder")
    p.add_argument("--fer2013", default=str(DATA / "fer2013" / "fer2013.csv.gz"), help="FER2013 csv or its folder")
    p.add_argument("--temperature", type=float, default=4.0, help="faceapi_temperature of the recipe")
    return p.parse_args(argv)


def table(name: str, split, probs: np.ndarray, tempered: np.ndarray) -> None:
    pred, y = probs.argmax(1), split.labels
    top = probs.max(1)
    print(
        f"\n# {name}: {len(y):,} faces; agreement with FER2013's labels {100 * (pred == y).mean():.2f} %; "
        f"mean top probability {top.mean():.3f} ({100 * (top > 0.9).mean():.1f} % of faces above 0.9), "
        f"{tempered.max(1).mean():.3f} once tempered"
    )
    print("| class | FER2013 faces | recall | called so | precision | tempered mass |")
    print("|---|---|---|---|---|---|")
    for j, label in enumerate(split.label_names):
        true, called = y == j, pred == j
        hits = int((true & called).sum())
        precision = f"{hits / called.sum():.3f}" if called.any() else "-"
        print(
            f"| {label} | {true.sum():,} | {hits / max(1, true.sum()):.3f} | {called.sum():,} | {precision} | "
            f"{tempered[:, j].mean():.3f} |"
        )


def main(argv: list[str] | None = None) -> int:
    from _timing import cpu_name

    from resemotenet.data import load
    from resemotenet.engine.evaluator import predict_probs
    from resemotenet.engine.soft_targets import teacher_probs, temper
    from resemotenet.models.faceapi import load_faceapi
    from resemotenet.utils.errors import ResEmoteNetError

    args = parse_args(argv)
    try:
        net = load_faceapi(args.faceapi)
        splits = load(f"fer2013:{args.fer2013}")
    except ResEmoteNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"# {net.source}; T = {args.temperature}; {time.strftime('%Y-%m-%d')}; {cpu_name()}; python {platform.python_version()}"
    )
    for name, split in (("Training", splits["train"]), ("PublicTest", splits["val"])):
        t0 = time.perf_counter()
        if name == "Training":
            probs = teacher_probs(split, net, progress=False)
        else:
            probs = predict_probs(net, split.images, net.preprocess, progress=False)
        table(name, split, probs, temper(probs, args.temperature))
        print(f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
