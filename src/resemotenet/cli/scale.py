"""``resemotenet predict --runner ray``: the same inputs, run as a Ray Data job (``scale.run_batch``)."""

from __future__ import annotations

import argparse
import sys


def add_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("more than one process (--runner ray, needs the [ray] extra)")
    g.add_argument(
        "--runner",
        choices=("local", "ray"),
        default="local",
        help="where it runs: local, this process (default); ray, a Ray Data job (output .parquet, .jsonl or .csv)",
    )
    g.add_argument("--address", metavar="ADDR", help="join the Ray cluster at HOST:PORT (default: start Ray locally)")
    g.add_argument("--workers", type=int, metavar="N", help="actors that load the model (default: from the CPUs)")
    g.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="refuse to continue a job whose parts exist (default: skip finished items)",
    )


def run(args: argparse.Namespace) -> int:
    from ..scale import run_batch
    from ..utils.errors import ConfigError

    unsupported = [
        flag
        for flag, on in (
            ("--webcam", args.webcam is not None),
            ("--save-annotated", args.save_annotated),
            ("--explain", args.explain),
            ("--max-frames", args.max_frames is not None),
            ("--append", args.append),
            ("--tta flip", getattr(args, "tta", "none") != "none"),
        )
        if on
    ]
    if unsupported:
        raise ConfigError(f"{', '.join(unsupported)}: not available with --runner ray")
    if not args.inputs:
        raise ConfigError("nothing to analyse: give INPUT paths")
    s = run_batch(
        args.inputs,
        args.output,
        address=args.address,
        workers=args.workers,
        model=args.model,
        detector=args.detector,
        min_confidence=args.min_confidence,
        stride=args.stride,
        force=args.force,
        resume=args.resume,
        progress=not args.no_progress,
        verbose=args.verbose,
    )
    skipped = f", {s['skipped']} already done" if s["skipped"] else ""
    print(
        f"{s['items']} work item(s){skipped}: {s['faces']} face(s) and {s['no_face']} image(s) with no face "
        f"to {s['output']}; Ray start-up {s['startup_s']:.1f} s, work {s['run_s']:.1f} s"
    )
    for note in s["notes"]:
        print(f"note: {note}")
    if s["failed"]:
        print(f"failed ({len(s['failed'])}, listed in {s['errors_file']}):", file=sys.stderr)
        for e in s["failed"]:
            print(f"  {e['error'] if e['source'] in e['error'] else e['source'] + ': ' + e['error']}", file=sys.stderr)
    return 1 if s["failed"] else 0
