"""``resemotenet export`` (checkpoint -> ONNX, checked against torch) and ``resemotenet quantize``
(ONNX -> static int8, calibrated on real faces). Weight averaging lives with training (``train.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_data_limit, add_model_arg, check_positive, model_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX (metadata, dynamic batch, parity check)")
    add_model_arg(p, "weights to export: a shipped name (default, fast) or a checkpoint (.pt, .safetensors)")
    p.add_argument(
        "--format",
        default="onnx",
        choices=["onnx", "safetensors"],
        help="onnx, or safetensors: weights + metadata only, for shipping (default: onnx)",
    )
    p.add_argument("--half", action="store_true", help="safetensors: store weights as fp16 (half the size)")
    p.add_argument("--output", "-o", help="destination file (default: the checkpoint's name with .onnx)")
    p.add_argument("--opset", type=int, default=18)
    add_data_limit(
        p,
        ("check_data", "--check-data"),
        ("check_size", "--check-size"),
        1024,
        "faces for the parity check: the test split of this dataset (default: FER2013 PrivateTest "
        "from $RESEMOTENET_FER2013 when set)",
        "number of faces in the parity check",
    )
    _synthetic_flag(p, "parity check")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)

    q = sub.add_parser("quantize", help="static int8 quantization of an exported ONNX model")
    add_model_arg(q, "ONNX file written by 'resemotenet export'")
    q.add_argument("--output", "-o", help="destination (default: MODEL.int8.onnx)")
    add_data_limit(
        q,
        ("calibration", "--calibration"),
        ("calibration_size", "--calibration-size"),
        512,
        "dataset whose validation split calibrates the activation ranges and whose test split "
        "measures the accuracy (default: FER2013 from $RESEMOTENET_FER2013 when set)",
        "calibration faces",
    )
    _synthetic_flag(q, "calibration (accuracy then not measured)")
    q.add_argument("--force", action="store_true", help="overwrite an existing output file")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    q.set_defaults(func=run)


def _synthetic_flag(p: argparse.ArgumentParser, use: str) -> None:
    p.add_argument(
        "--synthetic",
        action="store_true",
        help=f"use synthetic faces for the {use} when no real faces are at hand",
    )


def run(args: argparse.Namespace) -> int:
    from ..utils.errors import ConfigError
    from ..utils.io import check_output

    args.checkpoint = args.model = model_of(args)
    quantizing = args.command == "quantize"
    data, size = (args.calibration, args.calibration_size) if quantizing else (args.check_data, args.check_size)
    if data == "synthetic":  # the old spelling of --synthetic
        data, args.synthetic = None, True
    if args.synthetic and data:
        raise ConfigError(f"--synthetic and --data {data}: give one")
    check_positive("--limit", size)
    args.data = data
    if not quantizing and args.format == "safetensors":
        return _export_safetensors(args)
    args.output = _output(args)
    check_output(args.output, force=args.force)  # before any data is read or any model loads
    return _quantize(args) if quantizing else _export(args)


def _output(args: argparse.Namespace) -> Path:
    if args.output:
        return Path(args.output)
    src = Path(args.checkpoint)
    if args.command == "quantize":
        return src.with_name(src.stem + ".int8.onnx")
    return src.with_suffix(".onnx") if args.checkpoint != "default" else Path("default.onnx")


def _faces(args: argparse.Namespace, split: str):
    """(faces, their name) for a parity check or a calibration: ``--data``'s split, synthetic
    faces (asked for with ``--synthetic``), or FER2013 named by ``$RESEMOTENET_FER2013``; else
    a one-line error naming both ways."""
    from ..data import load, parse_spec
    from ..export.onnx import fer2013_split, find_fer2013
    from ..export.quantize import NO_DATA
    from ..imaging import synthetic_faces
    from ..utils.errors import ConfigError

    n = args.calibration_size if args.command == "quantize" else args.check_size
    if args.synthetic:
        return synthetic_faces(n), f"{n} synthetic faces"
    if args.data:
        name, root = parse_spec(args.data)
        return load(args.data, split), f"{name} {split} split ({root})"
    found = fer2013_split(split)
    if found is not None:
        return found, f"FER2013 {'PrivateTest' if split == 'test' else 'PublicTest'} ({find_fer2013()})"
    raise ConfigError(f"no faces for the {'parity check' if args.command == 'export' else 'calibration'}: {NO_DATA}")


def _export(args: argparse.Namespace) -> int:
    from ..export import export_onnx
    from ..export.onnx import require_exporter

    require_exporter()
    faces, name = _faces(args, "test")
    r = export_onnx(
        args.checkpoint,
        args.output,
        opset=args.opset,
        force=args.force,
        check_images=faces,
        check_size=args.check_size,
        check_name=name,
        progress=not args.no_progress,
    )
    print(
        f"exported {r['model']} -> {r['output']} ({_mb(r['size_bytes'])}, opset {r['opset']}, "
        f"{r['exporter']} exporter, dynamic batch, {r['seconds']:.1f}s)"
    )
    print(
        f"parity vs torch on {r['check_source']}: max |logit diff| {r['max_abs_diff']:.2e} "
        f"(limit {r['atol']:.0e}), argmax identical {r['argmax_same']}/{r['n_check']}"
    )
    return 0


def _export_safetensors(args: argparse.Namespace) -> int:
    """A training checkpoint -> an inference file: weights and metadata, no optimizer state."""
    from ..models.checkpoint import export_safetensors

    output, card = export_safetensors(args.checkpoint, args.output, half=args.half, force=args.force)
    print(
        f"exported {card.arch} -> {output} ({_mb(output.stat().st_size)}, "
        f"{'fp16' if args.half else 'fp32'} safetensors with metadata)"
    )
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from ..export import quantize_onnx
    from ..export.quantize import read_meta
    from ..imaging import synthetic_faces

    read_meta(args.model)  # a bad MODEL is named before any data is read
    if args.synthetic:
        calibration, check, name = synthetic_faces(args.calibration_size), synthetic_faces(256, seed=1), ""
    else:
        calibration, check, name = args.data, None, ""
    r = quantize_onnx(
        args.model,
        args.output,
        calibration=calibration,
        calibration_size=args.calibration_size,
        force=args.force,
        check=check,
        check_name="256 synthetic faces" if args.synthetic else name,
        progress=not args.no_progress,
    )
    if args.synthetic:
        r["calibration_source"] = "synthetic data (--synthetic)"
    print(
        f"quantized {r['input']} -> {r['output']} (static QDQ int8, per-channel; calibrated on "
        f"{r['calibration_size']} faces of {r['calibration_source']}, {r['seconds']:.1f}s)"
    )
    print(f"size: {_mb(r['size_before'])} -> {_mb(r['size_after'])} ({r['size_after'] / r['size_before']:.2f}x)")
    if "accuracy_before" in r:
        print(
            f"{r['check_source']} accuracy (n={r['accuracy_n']}): fp32 {r['accuracy_before']:.4f} -> "
            f"int8 {r['accuracy_after']:.4f} ({100 * (r['accuracy_after'] - r['accuracy_before']):+.2f} pts); "
            f"same prediction on {100 * r['agreement']:.1f}%"
        )
    elif "agreement" in r:
        print(
            f"fp32 and int8 give the same prediction on {100 * r['agreement']:.1f}% of {r['check_source']}; "
            "accuracy not measured (no labels in the model's order)"
        )
    else:
        print(r.get("accuracy_note", ""))
    return 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"
