"""``resemotenet export`` (checkpoint -> ONNX, checked against torch) and ``resemotenet quantize``
(ONNX -> static int8, calibrated on real faces). Weight averaging lives with training (``train.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_data_limit, add_model_arg, model_of


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
        "faces for the parity check: a FER2013 csv (PrivateTest is used) or 'synthetic' "
        "(default: $RESEMOTENET_FER2013 when set, else synthetic)",
        "number of faces in the parity check",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=run)

    q = sub.add_parser("quantize", help="static int8 quantization of an exported ONNX model")
    add_model_arg(q, "ONNX file written by 'resemotenet export'")
    q.add_argument("--output", "-o", help="destination (default: MODEL.int8.onnx)")
    add_data_limit(
        q,
        ("calibration", "--calibration"),
        ("calibration_size", "--calibration-size"),
        512,
        "dataset whose validation split calibrates the activation ranges "
        "(default: FER2013 PublicTest from $RESEMOTENET_FER2013 when set)",
        "calibration faces",
    )
    q.add_argument("--force", action="store_true", help="overwrite an existing output file")
    q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args.checkpoint = args.model = model_of(args)
    return _quantize(args) if args.command == "quantize" else _export(args)


def _check_images(check_data: str | None, n: int):
    from ..export.onnx import fer2013_split, synthetic_faces

    if check_data is None:
        return None
    if check_data == "synthetic":
        return synthetic_faces(n)
    return fer2013_split("test", check_data)


def _export(args: argparse.Namespace) -> int:
    if args.format == "safetensors":
        return _export_safetensors(args)
    from ..export import export_onnx

    src = Path(args.checkpoint)
    output = args.output or (src.with_suffix(".onnx") if args.checkpoint != "default" else Path("default.onnx"))
    r = export_onnx(
        args.checkpoint,
        output,
        opset=args.opset,
        force=args.force,
        check_images=_check_images(args.check_data, args.check_size),
        check_size=args.check_size,
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
    from ..models.checkpoint import load_checkpoint, model_from_state, save_model
    from ..utils.errors import ResEmoteNetError

    output = Path(args.output or Path(args.checkpoint).with_suffix(".safetensors"))
    if output.exists() and not args.force:
        raise ResEmoteNetError(f"{output}: already exists (use --force to overwrite)")
    state, meta, _ = load_checkpoint(args.checkpoint)
    model = model_from_state(state, meta, args.checkpoint)
    save_model(output, model, meta, half=args.half)
    print(
        f"exported {meta['model']} -> {output} ({_mb(output.stat().st_size)}, "
        f"{'fp16' if args.half else 'fp32'} safetensors with metadata)"
    )
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from ..export import quantize_onnx

    r = quantize_onnx(
        args.model, args.output, calibration=args.calibration, calibration_size=args.calibration_size, force=args.force
    )
    print(
        f"quantized {r['input']} -> {r['output']} (static QDQ int8, per-channel; calibrated on "
        f"{r['calibration_size']} faces of {r['calibration_source']}, {r['seconds']:.1f}s)"
    )
    print(f"size: {_mb(r['size_before'])} -> {_mb(r['size_after'])} ({r['size_after'] / r['size_before']:.2f}x)")
    if "accuracy_before" in r:
        print(
            f"FER2013 PrivateTest accuracy (n={r['accuracy_n']}): fp32 {r['accuracy_before']:.4f} -> "
            f"int8 {r['accuracy_after']:.4f} ({100 * (r['accuracy_after'] - r['accuracy_before']):+.2f} pts); "
            f"same prediction on {100 * r['agreement']:.1f}%"
        )
    else:
        print(r.get("accuracy_note", ""))
    return 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"
