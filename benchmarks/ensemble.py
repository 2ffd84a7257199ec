"""Would averaging two models (or their mirrored views) reconcile FER2013's labels with the FER+
crowd's? Accuracy of weighted probability averages of two models on FER2013 PublicTest only,
against FER2013's labels and against FER+ majority labels on the same faces, with the mean of
the two (the rule that chose stage 4 of ``default``: RECIPES.md). An ensemble that does not beat
its members by that rule is no teacher worth distilling a single model from.

    git show eb79256:src/resemotenet/weights/default.safetensors > runs/teachers/stage3.safetensors
    python benchmarks/ensemble.py runs/teachers/stage3.safetensors default --weights 0,0.3,0.5,0.7,1

Both models must share their preprocessing (input size, channels, normalisation) and labels.
Weight w gives ``w * p(first) + (1 - w) * p(second)``, each model at its own calibrated
temperature; w = 1 and w = 0 are the members alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("first", help="shipped name or checkpoint")
    p.add_argument("second", help="shipped name or checkpoint")
    p.add_argument("--weights", default="0,0.3,0.5,0.7,1", help="weights of the first model, comma-separated")
    p.add_argument("--tta", default="none,flip", help="test-time views to try: none, flip (comma-separated)")
    p.add_argument("--fer2013", default=str(DATA / "fer2013"), help="FER2013 csv or its folder")
    p.add_argument("--ferplus", default=str(DATA / "ferplus"), help="folder holding fer2013new.csv")
    p.add_argument("--limit", type=int, help="first N PublicTest faces only (a quick look, not a figure)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from generalization import publictest

    from resemotenet.cli.backend import open_model
    from resemotenet.engine.evaluator import evaluate

    (m1, card1), (m2, card2) = open_model(args.first), open_model(args.second)
    if card1.preprocess != card2.preprocess or card1.labels != card2.labels:
        print("ensemble.py: the two models differ in preprocessing or labels", file=sys.stderr)
        return 2
    m1.eval()
    m2.eval()
    spec, labels = card1.preprocess, card1.labels
    t1, t2 = card1.temperature, card2.temperature
    fer_val, ferplus_val = publictest(args.fer2013, args.ferplus, args.limit)
    print(f"# first = {args.first}, second = {args.second}")
    print("| weight of first | views | FER2013 labels | FER+ majority | mean |")
    print("|---|---|---|---|---|")
    for tta in args.tta.split(","):
        # each member scores each split once; the blends reuse those probabilities
        fer = [evaluate(m, fer_val, labels, spec, temperature=t, tta=tta) for m, t in ((m1, t1), (m2, t2))]
        plus = [evaluate(m, ferplus_val, labels, spec, temperature=t, tta=tta) for m, t in ((m1, t1), (m2, t2))]
        for w in (float(v) for v in args.weights.split(",")):
            a, b = (
                float(np.mean((w * r[0].probs + (1 - w) * r[1].probs).argmax(1) == r[0].targets)) for r in (fer, plus)
            )
            print(f"| {w:g} | {tta} | {100 * a:.2f} % | {100 * b:.2f} % | {50 * (a + b):.2f} % |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
