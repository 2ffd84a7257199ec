"""``resemotenet audit``, ``calibrate`` and ``report``, and the trust flags of ``resemotenet eval``
(``--corruptions``, ``--attributes``, ``--risk-coverage``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import add_data_args, add_model_arg, data_options, model_of, parse_data_spec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="find exact and near-duplicate images within and across splits")
    add_data_args(p, required=True)
    p.add_argument("--output", "-o", default="runs/audit", help="folder for audit.json and dedup.json")
    p.add_argument("--threshold", type=int, default=6, help="pHash Hamming distance for near duplicates (bits)")
    p.add_argument("--min-corr", type=float, default=0.95, help="pixel correlation that confirms a near duplicate")
    p.add_argument(
        "--examples",
        type=int,
        nargs="?",
        const=8,
        default=0,
        metavar="N",
        help="write image strips of N example pairs (default 8)",
    )
    p.add_argument("--limit", type=int, help="audit the first N samples of each split only")
    p.set_defaults(func=run_audit)

    p = sub.add_parser("calibrate", help="fit a softmax temperature on the validation split")
    add_model_arg(p, "checkpoint (.pt or .safetensors) to calibrate")
    add_data_args(p, required=True)
    p.add_argument("--output", "-o", help="write the calibrated checkpoint here (default: update in place)")
    p.add_argument(
        "--target-accuracy", type=float, default=0.9, help="recommend a --min-confidence reaching this accuracy on val"
    )
    p.add_argument(
        "--report-dir",
        help="folder for calibration.json and risk_coverage.json/.png (default: the checkpoint's folder)",
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--limit", type=int, help="use the first N samples of each split only")
    p.set_defaults(func=run_calibrate)

    p = sub.add_parser("report", help="one self-contained HTML page for a run folder")
    p.add_argument("run_dir", help="run folder (train --output, eval --output, audit --output)")
    p.add_argument("--output", "-o", help="HTML file (default RUN_DIR/report.html)")
    p.set_defaults(func=run_report)


def _data_cfg(args: argparse.Namespace):
    from ..config import DataConfig

    name, root = parse_data_spec(args.data)
    return DataConfig(
        name=name, root=root, options=data_options(args.data_option), split_file=args.split_file, limit=args.limit
    )


def _write_json(out: Path, name: str, obj: Any) -> Path:
    from ..utils.io import atomic_write_text

    return atomic_write_text(out / name, json.dumps(obj, indent=2))


def _figure(draw, data: Any, path: Path) -> None:
    """Draw a PNG; without matplotlib say so and carry on (the JSON is already written)."""
    from ..utils.errors import MissingExtraError

    try:
        draw(data, path)
    except MissingExtraError as exc:
        print(f"no {path.name}: {exc}")


def run_audit(args: argparse.Namespace) -> int:
    from ..analysis.audit import audit

    r = audit(_data_cfg(args), args.output, args.threshold, args.min_corr, args.examples)
    ex, near = r["exact"], r["near"]
    print(f"{r['dataset']}: {r['n']} images {r['splits']} audited in {r['seconds']:.1f} s")
    print(
        f"exact duplicates: {ex['redundant_rows']} redundant rows in {ex['groups']} groups "
        f"({ex['label_conflicts']} groups with conflicting labels)"
    )
    print(
        f"near duplicates (pHash <= {r['threshold']} bits, corr >= {r['min_corr']}): "
        f"{near['pairs_distinct_images']} pairs; redundant rows counting both: {near['redundant_rows_with_exact']}"
    )
    print(f"{'split pair':14s} {'exact pairs':>12s} {'near pairs':>11s}")
    for pair, v in ex["pairs"].items():
        print(f"{pair:14s} {v:12d} {near['pairs'][pair]:11d}")
    for a, per in r["leaks"].items():
        exact = ex["leaks"][a]
        print(f"rows of {a} also in " + ", ".join(f"{b}: {exact[b]} exact, {v} exact or near" for b, v in per.items()))
    print("examples (exact): " + "; ".join(" = ".join(p) for p in ex["examples"][:4]))
    print(
        f"wrote {Path(args.output) / 'audit.json'}; {r['exclude_train']} training rows to exclude in "
        f"{r['files']['dedup']} (resemotenet train --exclude-file)"
    )
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from ..analysis.calibration import calibrate
    from ..report import risk_coverage_png

    r = calibrate(model_of(args), _data_cfg(args), args.output, args.target_accuracy, args.batch_size)
    print(f"temperature {r['temperature']:.4f} (was {r['previous_temperature']:.4f}), fitted on val (n={r['n_val']})")
    for split in ("val", "test"):
        b, a = r[split]["before"], r[split]["after"]
        tag = "" if split == "val" else "  (report only, not used to fit)"
        print(f"  {split:4s} NLL {b['nll']:.4f} -> {a['nll']:.4f}   ECE {b['ece']:.4f} -> {a['ece']:.4f}{tag}")
    out = Path(args.report_dir) if args.report_dir else Path(r["checkpoint"]).parent
    rc = r.pop("risk_coverage", None)
    _write_json(out, "calibration.json", r)
    if rc is not None:
        _print_recommendation(rc["recommended"])
        _write_json(out, "risk_coverage.json", rc)
        _figure(risk_coverage_png, rc, out / "risk_coverage.png")
    print(f"wrote {r['checkpoint']} (temperature in its metadata) and {out / 'calibration.json'}")
    return 0


def _print_recommendation(rec: dict[str, Any]) -> None:
    if rec["min_confidence"] is None:
        print(f"risk-coverage: {rec['note']}")
        return
    print(
        f"risk-coverage: --min-confidence {rec['min_confidence']:.3f} keeps {100 * rec['coverage']:.1f} % of val "
        f"faces at accuracy {rec['accuracy']:.4f} (target {rec['target_accuracy']:.2f}); "
        f"{100 * rec['deferred']:.1f} % go to a person"
    )
    if rec.get("test"):
        print(f"  on test: keeps {100 * rec['test']['coverage']:.1f} % at accuracy {rec['test']['accuracy']:.4f}")


def run_report(args: argparse.Namespace) -> int:
    from ..report import build_report

    print(f"wrote {build_report(args.run_dir, args.output)}")
    return 0


# ---- resemotenet eval: trust flags ---------------------------------------------------------------
def _checked(parse):
    """An argparse type from a library parser: a bad value fails before any evaluation runs."""

    def convert(value: str):
        from ..utils.errors import ConfigError

        try:
            return parse(value)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _corruption_list(value: str) -> list[str]:
    from ..analysis.robustness import parse_corruptions

    return _checked(parse_corruptions)(value)


def _severity_list(value: str) -> list[int]:
    from ..analysis.robustness import parse_severities

    return _checked(parse_severities)(value)


def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--corruptions",
        type=_corruption_list,
        metavar="all|NAME,...",
        help="accuracy under gaussian_noise, blur, low_light, jpeg, occlusion",
    )
    p.add_argument("--severities", type=_severity_list, default="1,2,3", help="corruption severities among 1,2,3")
    p.add_argument("--corruption-seed", type=int, default=0)
    p.add_argument("--attributes", metavar="CSV", help="per-group metrics; CSV header image,attribute,value")
    p.add_argument(
        "--risk-coverage",
        action="store_true",
        help="accuracy vs share handed to a person; recommends --min-confidence (chosen on val)",
    )
    p.add_argument("--target-accuracy", type=float, default=0.9)


def eval_extras(
    args: argparse.Namespace, model: Any, splits: dict, card: Any, spec: Any, temperature: float, result: Any
) -> None:
    """Run the trust analyses asked for on ``eval``'s command line; files go to ``--output``.
    ``result`` is the ``EvalResult`` of the split itself (its samples, probabilities, ids)."""
    out = Path(args.output) if args.output else None
    probs, targets = result.probs, result.targets
    split = splits[args.split]
    if args.corruptions:
        from ..analysis.robustness import evaluate_corruptions, format_table
        from ..report import robustness_png

        r = evaluate_corruptions(
            model,
            split,
            card.labels,
            spec,
            args.corruptions,
            args.severities,
            temperature,
            seed=args.corruption_seed,
            batch_size=args.batch_size,
        )
        print(format_table(r))
        if out:
            _write_json(out, "robustness.json", r)
            _figure(robustness_png, r, out / "robustness.png")
    if args.attributes:
        from ..analysis.slices import format_slices, read_attributes, slice_metrics

        s = slice_metrics(probs, targets, list(result.ids), _labels(card, split), read_attributes(args.attributes))
        print(format_slices(s))
        if out:
            _write_json(out, "slices.json", s)
    if args.risk_coverage:
        _eval_risk_coverage(args, model, splits, card, spec, temperature, probs, targets, out)


def _labels(card: Any, split: Any) -> tuple[str, ...]:
    from ..labels import shared_labels

    model, data = tuple(card.labels), tuple(split.label_names)
    return model if model == data else shared_labels(data, model)


def _eval_risk_coverage(args, model, splits, card, spec, temperature, probs, targets, out) -> None:
    from ..analysis.calibration import apply_threshold, recommend_threshold, risk_coverage
    from ..engine.evaluator import evaluate
    from ..report import risk_coverage_png

    if args.split == "val":
        pv, yv = probs, targets
    else:
        m = evaluate(model, splits["val"], card.labels, spec, temperature=temperature, batch_size=args.batch_size)
        pv, yv = m.probs, m.targets
    rec = recommend_threshold(pv, yv, args.target_accuracy)
    rc: dict[str, Any] = {"split": "val", "curve": risk_coverage(pv, yv), "recommended": rec}
    if args.split == "test":
        rc["test_curve"] = risk_coverage(probs, targets)
        if rec["min_confidence"] is not None:
            rec["test"] = apply_threshold(probs, targets, rec["min_confidence"])
    _print_recommendation(rec)
    if out:
        _write_json(out, "risk_coverage.json", rc)
        _figure(risk_coverage_png, rc, out / "risk_coverage.png")
