"""Simulate a site pilot: the loop's own sampling, a person's labels, a fine-tune, and the truth.

The labelled folder's groups are split in half (by group: people or movies never straddle).
Half A is "the site so far": the base model scores its faces, and the review policy picks what a
person would label (every face the base model is unsure of, plus an audit share of confident
faces; see ``inference.sampling``), N of them in the order they arrive; the folder's label plays
the person. ``resemotenet finetune`` runs on those labels exactly as a site would run it (its own
train / validation / held-out parts carved by group from the labelled faces) and reports its own
before/after. Half B is "people the site has not seen yet": every face of it is scored by the
base and the fine-tuned model, with group-bootstrap intervals. The table puts the loop's own
estimate beside the truth on B.

    python benchmarks/site_adaptation.py --data folder:../shared/data/xdomain/sfew-train --group-by movie \\
        --labels 100 200 400 all --seed 0
    python benchmarks/site_adaptation.py --data folder:../shared/data/xdomain/jaffe-partial --labels all --detector centerface

``--fer2013 PATH`` also scores both models on FER2013 PublicTest (the forgetting check);
``--rehearsal-data fer2013:PATH`` mixes FER2013 training faces into the fine-tune's batches.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _timing import append_jsonl, cpu_name

from resemotenet.analysis.intervals import bootstrap_accuracy, paired_difference, verdict
from resemotenet.analysis.site import finetune, read_faces
from resemotenet.data.readers import get_reader
from resemotenet.data.splits import group_split
from resemotenet.engine.finetune import FinetuneRecipe
from resemotenet.inference.predictor import Predictor


def _groups(split, by: str | None) -> np.ndarray:
    g = split.groups if split.groups is not None else np.asarray(split.ids, dtype=str)
    return np.array([x.rsplit("_", 1)[0] for x in g]) if by == "movie" else g


def _crops(predictor: Predictor, images: list[np.ndarray], use_detector: bool) -> tuple[list[np.ndarray], int]:
    """The faces the loop would see: the detector's largest face (the whole image when none is
    found, counted) or the image itself as the crop."""
    if not use_detector:
        return images, 0
    out, missed = [], 0
    for img in images:
        faces = predictor.locate(img)
        if faces:
            out.append(max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])).crop)
        else:
            out.append(img)
            missed += 1
    return out, missed


def _pick(probs: np.ndarray, threshold: float, audit_rate: float, n: int | None, rng) -> tuple[np.ndarray, float]:
    """The review policy on half A: uncertain faces and an audit share of confident ones, in a
    random arrival order, the first ``n`` (None = every face labelled)."""
    unsure = probs.max(1) < threshold
    share = float(unsure.mean())
    if n is None:
        return np.arange(len(probs)), share
    queued = np.flatnonzero(unsure | (rng.random(len(probs)) < audit_rate))
    return rng.permutation(queued)[:n], share


def _write_folder(root: Path, crops, labels, groups, names) -> None:
    rows = ["file,group"]
    for i, (c, y, g) in enumerate(zip(crops, labels, groups, strict=True)):
        (root / names[y]).mkdir(parents=True, exist_ok=True)
        f = f"{names[y]}/{i:05d}.png"
        cv2.imwrite(str(root / f), cv2.cvtColor(c, cv2.COLOR_RGB2BGR) if c.ndim == 3 else c)
        rows.append(f"{f},{g}")
    (root / "groups.csv").write_text("\n".join(rows) + "\n")


def _fer_public(model_path: str, fer2013: str) -> float:
    from resemotenet.engine.evaluator import evaluate
    from resemotenet.models.checkpoint import card_of, load_model

    split = get_reader("fer2013")(fer2013)["val"]  # PublicTest: validation, never PrivateTest
    model = load_model(model_path)
    card = card_of(model)
    return float(evaluate(model, split, card.labels, card.preprocess, card.temperature)["accuracy"])


def run_one(args, split, groups, n, seed) -> dict:
    names = tuple(split.label_names)
    a_idx, b_idx = group_split(split.labels, groups, [0.5, 0.5], seed)
    base = Predictor(args.base, detector=args.detector or "centerface")
    images = read_faces(split)
    crops, missed = _crops(base, images, bool(args.detector))
    crops_a, crops_b = [crops[i] for i in a_idx], [crops[i] for i in b_idx]
    probs_a = base.score(crops_a)
    picked, share = _pick(probs_a, base.min_confidence, args.audit_rate, n, np.random.default_rng(seed))
    recipe = FinetuneRecipe(
        layers=args.layers,
        epochs=args.epochs,
        lr=args.lr,
        rehearsal=args.rehearsal if args.rehearsal_data else 0.0,
        seed=seed,
    )
    with tempfile.TemporaryDirectory(prefix="site-") as tmp:
        site = Path(tmp) / "labelled"
        _write_folder(site, [crops_a[i] for i in picked], split.labels[a_idx][picked], groups[a_idx][picked], names)
        start = time.perf_counter()
        report = finetune(
            args.base, site, Path(tmp) / "out", recipe, rehearsal_data=args.rehearsal_data, uncertain_share=share
        )
        seconds = time.perf_counter() - start
        tuned = Predictor(str(Path(tmp) / "out" / "model.safetensors"), detector=args.detector or "centerface")
        probs_b_base, probs_b_new = base.score(crops_b), tuned.score(crops_b)
        fer = _fer_public(str(Path(tmp) / "out" / "model.safetensors"), args.fer2013) if args.fer2013 else None
    y_b, g_b = split.labels[b_idx], groups[b_idx]
    ok_before, ok_after = probs_b_base.argmax(1) == y_b, probs_b_new.argmax(1) == y_b
    diff = paired_difference(ok_after, ok_before, g_b, seed=seed)
    held = report["held_out"]
    site = (held.get("site_estimate") or {}).get("after")  # None: too few audit faces held out
    own = site or held["all"]["after"]  # else the loop can only show its labelled sample's figure
    truth = bootstrap_accuracy(ok_after, g_b, seed=seed)
    return {
        "labels": "all" if n is None else n,
        "labelled": int(len(picked)),
        "uncertain_share_A": round(share, 3),
        "groups_A_B": [int(len(set(groups[a_idx]))), int(len(set(g_b)))],
        "own_estimate_after": own,
        "own_estimate_kind": "site estimate" if site else "labelled sample (no site estimate)",
        "own_heldout_faces": held["faces"],
        "unseen_before": bootstrap_accuracy(ok_before, g_b, seed=seed).to_dict(),
        "unseen_after": truth.to_dict(),
        "unseen_difference": diff.to_dict(),
        "verdict": verdict(diff),
        "own_estimate_covers_truth": bool(own and own["low"] <= truth.estimate <= own["high"]),
        "fer2013_public_after": fer,
        "detector_missed": missed,
        "finetune_s": round(seconds, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder:DIR with groups (groups.csv or labels.csv)")
    ap.add_argument("--group-by", choices=["movie"], help="movie: the text before the last _ of the group (SFEW clips)")
    ap.add_argument("--labels", nargs="+", default=["100", "200", "400", "all"])
    ap.add_argument("--seed", type=int, nargs="+", default=[0])
    ap.add_argument("--base", default="default")
    ap.add_argument(
        "--detector", help="find the face in each image first (e.g. centerface); default: the image is the crop"
    )
    ap.add_argument("--audit-rate", type=float, default=0.05)
    ap.add_argument("--layers", default=FinetuneRecipe.layers)
    ap.add_argument("--epochs", type=int, default=FinetuneRecipe.epochs)
    ap.add_argument("--lr", type=float, default=FinetuneRecipe.lr)
    ap.add_argument("--rehearsal-data", help="fer2013:PATH (training faces mixed into batches)")
    ap.add_argument("--rehearsal", type=float, default=FinetuneRecipe.rehearsal)
    ap.add_argument("--fer2013", help="FER2013 csv: score both models on PublicTest")
    ap.add_argument("--output", help="append each row as JSON to this file")
    args = ap.parse_args()
    root = args.data.split(":", 1)[1] if args.data.startswith("folder:") else args.data
    split = get_reader("folder")(root)["all"]
    groups = _groups(split, args.group_by)
    print(f"# {root}: {len(split)} faces, {len(set(groups))} groups; CPU {cpu_name()}; {platform.python_version()}")
    print("N | labelled | loop's own figure (after) | unseen before | unseen after | difference | verdict | covers")
    for seed in args.seed:
        for lab in args.labels:
            row = run_one(args, split, groups, None if lab == "all" else int(lab), seed)
            row["seed"], row["data"], row["date"] = seed, root, time.strftime("%Y-%m-%d")
            o, b, a, d = row["own_estimate_after"], row["unseen_before"], row["unseen_after"], row["unseen_difference"]
            pct = lambda iv: f"{100 * iv['estimate']:.1f} [{100 * iv['low']:.1f}, {100 * iv['high']:.1f}]"  # noqa: E731
            print(
                f"{row['labels']} | {row['labelled']} | {pct(o)} ({row['own_estimate_kind']}) | {pct(b)} | {pct(a)} | "
                f"{100 * d['estimate']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] | {row['verdict']} | "
                f"{row['own_estimate_covers_truth']}",
                flush=True,
            )
            append_jsonl(args.output, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
