"""``resemotenet eval``: metrics, confusion matrix and reliability diagram of a model on a split."""

from __future__ import annotations

import argparse

from .common import add_data_args, add_model_arg, check_positive, data_options, model_of, parse_data_spec
from .trust import add_eval_args, eval_extras


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model on a dataset split")
    add_model_arg(p, "weights: a shipped name (default, fast), a checkpoint (.pt, .safetensors) or an .onnx file")
    add_data_args(p, required=True)
    p.add_argument(
        "--split",
        default="test",
        choices=["train", "val", "test", "all"],
        help="split to score (default: test); 'all' scores every image of a dataset without "
        "official splits, such as a folder of your own test faces",
    )
    p.add_argument(
        "--only-present-classes", action="store_true", help="let the model choose only among the classes the data holds"
    )
    p.add_argument("--tta", default="none", choices=["none", "flip", "tencrop"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--limit", type=int, help="evaluate the first N samples only (N >= 1)")
    p.add_argument("--output", "-o", help="folder for metrics.json and plots")
    p.add_argument("--force", action="store_true", help="replace the metrics.json (and plots) already in --output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-temperature", action="store_true", help="ignore a stored calibration temperature")
    add_eval_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime, timezone
    from pathlib import Path

    from ..data import load
    from ..engine.evaluator import evaluate
    from ..utils.io import atomic_write_text, check_output_dir
    from .backend import open_model

    args.model = model_of(args)
    check_positive("--limit", args.limit)
    check_positive("--batch-size", args.batch_size)
    if args.output:  # the output rule: refused before the model loads or the data is read
        check_output_dir(args.output, force=args.force, what="metrics.json")
    model, card = open_model(args.model)
    name, _ = parse_data_spec(args.data)
    fields = {"options": data_options(args.data_option), "split_file": args.split_file, "limit": args.limit}
    loaded = load(args.data, args.split if args.split == "all" else None, **fields)
    splits = {"all": loaded} if args.split == "all" else loaded
    split = splits[args.split]
    spec = card.preprocess
    temperature = 1.0 if args.no_temperature else card.temperature
    m = evaluate(
        model,
        split,
        card.labels,
        spec,
        temperature=temperature,
        tta=args.tta,
        batch_size=args.batch_size,
        only_present=args.only_present_classes,
        progress=not args.no_progress,
    )
    result = m
    measured = datetime.now(timezone.utc).isoformat(timespec="seconds")
    m = {**result.to_dict(), "model": str(args.model), "data": args.data, "split": args.split, "date": measured}
    print(
        f"{name} {args.split}: n={m['n']} accuracy {m['accuracy']:.4f}  balanced {m['balanced_accuracy']:.4f}  "
        f"macro-F1 {m['macro_f1']:.4f}  NLL {m['nll']:.4f}  ECE {m['ece']:.4f}  (tta={args.tta})"
    )
    if "note" in m:
        print(f"note: {m['note']}")
    for label, r in m["per_class"].items():
        print(f"  {label:10s} P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} n={r['support']}")
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "metrics.json", json.dumps(m, indent=2))
        _plots(out, m, result.probs, result.targets)
        print(f"wrote {out / 'metrics.json'}")
    eval_extras(args, model, splits, card, spec, temperature, result)
    return 0


def _plots(out, m, probs, targets) -> None:
    from ..utils.errors import MissingExtraError

    try:
        from ..plots import confusion_matrix_png, reliability_png

        confusion_matrix_png(m["confusion"], m["labels"], out / "confusion.png")
        reliability_png(probs, targets, out / "reliability.png")
    except (ImportError, MissingExtraError):
        print("matplotlib is not installed: no plots (pip install 'resemotenet[plot]')")
