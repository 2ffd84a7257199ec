"""Post-hoc class priors: would shifting the shipped model's decision between classes buy the
per-class recall that FER2013's labels ask for, and what would it cost against FER+'s labels?

A prior shift adds one constant per class to the log-probabilities before the argmax (the
logit adjustment of Menon et al., ICLR 2021). It is fitted on **PublicTest** only (validation:
coordinate ascent over a grid in [-1.5, 1.5], four sweeps), with one of several objectives,
against FER2013's labels or against FER+'s majority labels of the same rows; **PrivateTest** is
then scored once per fitted shift, against both label sets (FER+ rows whose majority is contempt
or unknown are left out, as in the model card's FER+ figure).

    python benchmarks/class_priors.py [--model default] [--fer2013 PATH] [--ferplus DIR]

Prints accuracy, macro-F1, balanced accuracy and per-class recall for each shift. Nothing is
written; a shift that helps is shipped only through the model card, with its figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _timing import cpu_name

from resemotenet.card import ModelCard
from resemotenet.data.dataset import materialize
from resemotenet.data.loading import load_splits
from resemotenet.engine.evaluator import predict_probs
from resemotenet.metrics import confusion_matrix, per_class
from resemotenet.models import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GRID = np.linspace(-1.5, 1.5, 31)


def scores(logp: np.ndarray, y: np.ndarray, shift: np.ndarray) -> dict[str, float | np.ndarray]:
    pred = (logp + shift).argmax(1)
    pc = per_class(confusion_matrix(y, pred, logp.shape[1]))
    present = pc["support"] > 0
    return {
        "acc": float((pred == y).mean()),
        "f1": float(pc["f1"][present].mean()),
        "bacc": float(pc["recall"][present].mean()),
        "recall": pc["recall"],
    }


OBJECTIVES = {
    "accuracy": lambda s: s["acc"],
    "macro-F1": lambda s: s["f1"],
    "balanced accuracy": lambda s: s["bacc"],
    "balanced accuracy + accuracy": lambda s: s["bacc"] + s["acc"],
}


def fit_shift(logp: np.ndarray, y: np.ndarray, objective: str, sweeps: int = 4) -> np.ndarray:
    """Coordinate ascent on ``OBJECTIVES[objective]`` over ``GRID``, one class at a time."""
    value = OBJECTIVES[objective]
    shift = np.zeros(logp.shape[1])
    for _ in range(sweeps):
        for c in range(len(shift)):
            best_v, best_g = -np.inf, shift[c]
            for g in GRID:
                trial = shift.copy()
                trial[c] = g
                v = value(scores(logp, y, trial))
                if v > best_v + 1e-12:
                    best_v, best_g = v, g
            shift[c] = best_g
        shift -= shift.mean()
    return shift


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--fer2013", default=str(DATA / "fer2013" / "fer2013.csv.gz"))
    ap.add_argument("--ferplus", default=str(DATA / "ferplus"))
    args = ap.parse_args()
    model = load_model(args.model)
    card = ModelCard.from_meta(model.pretrained_cfg)
    labels = tuple(card.labels)
    print(f"model {args.model}; {cpu_name()}")

    def logprobs(split) -> np.ndarray:
        spec = card.preprocess
        p = predict_probs(model, materialize(split, spec.size, reduce_to=spec.reduce_to), spec, card.temperature, 128)
        return np.log(np.clip(p, 1e-12, None))

    fer = load_splits(f"fer2013:{args.fer2013}")
    fp = load_splits(f"ferplus:{args.ferplus}", options={"fer2013": args.fer2013, "mode": "majority"})
    sets = {}
    for name, splits in (("FER2013", fer), ("FER+ majority", fp)):
        for s in ("val", "test"):
            y = np.asarray(splits[s].labels)
            keep = y < len(labels)  # FER+: contempt / unknown majorities are not among the 7 classes
            sets[name, s] = (logprobs(splits[s])[keep], y[keep])
    print(
        f"PublicTest {len(sets['FER2013', 'val'][1])} faces ({len(sets['FER+ majority', 'val'][1])} with a FER+ "
        f"majority among the 7), PrivateTest {len(sets['FER2013', 'test'][1])} "
        f"({len(sets['FER+ majority', 'test'][1])})\n"
    )
    rows = [("none", "-", np.zeros(len(labels)))]
    for target in ("FER2013", "FER+ majority"):
        for objective in OBJECTIVES:
            rows.append((objective, target, fit_shift(*sets[target, "val"], objective)))
    head = " ".join(f"{n[:5]:>5}" for n in labels)
    print(
        f"{'fitted on PublicTest for':30} {'labels':14} | PrivateTest, FER2013 labels: acc  F1    bacc  "
        f"recall {head} | FER+ majority: acc  F1    bacc"
    )
    for objective, target, shift in rows:
        a = scores(*sets["FER2013", "test"], shift)
        b = scores(*sets["FER+ majority", "test"], shift)
        rec = " ".join(f"{r:5.3f}" for r in a["recall"])
        print(
            f"{objective:30} {target:14} | {100 * a['acc']:5.2f} {100 * a['f1']:5.2f} {100 * a['bacc']:5.2f} "
            f"       {rec} | {100 * b['acc']:5.2f} {100 * b['f1']:5.2f} {100 * b['bacc']:5.2f}"
        )
        if target != "-":
            print(f"{'':30} {'':14}   shift {' '.join(f'{v:+.2f}' for v in shift)}")


if __name__ == "__main__":
    main()
