"""Inference speed on this CPU, side by side in one run: the shipped model and the full ResEmoteNet,
each through torch fp32 eager, torch channels_last, torch bf16 autocast, onnxruntime fp32 and
onnxruntime int8 (static QDQ). Prints one table and the targets beside the measurements.

    python benchmarks/inference.py [--quick] [--threads N]

Columns: batch-1 latency median and p90 (ms, one face per call, as an app sees it), batch-64
throughput (faces/s), and the achieved GFLOP/s at batch 64 as a fraction of a reference measured
in the same run (one 3x3 convolution 256->256 channels on 16x16 maps, batch 64, fp32 torch), so
numbers from a busy or a different machine stay comparable. FLOPs are counted by
``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add; the int8 rows use the same count).
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from resemotenet.config import PreprocessSpec
from resemotenet.data.transforms import preprocess_batch
from resemotenet.export import export_onnx, quantize_onnx
from resemotenet.export.onnx import fer2013_split, ort_session, synthetic_faces
from resemotenet.labels import EMOTIONS7
from resemotenet.models import create_model, load_model
from resemotenet.models.checkpoint import DEFAULT_WEIGHTS, make_meta
from resemotenet.utils.runtime import tune_allocator

PATHS = ("torch fp32 eager", "torch channels_last", "torch bf16 autocast", "onnxruntime fp32", "onnxruntime int8")
FP32_PATHS = PATHS[:2] + PATHS[3:4]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few repetitions and a small calibration set")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch and onnxruntime threads")
    return p.parse_args(argv)


# ---- timing -------------------------------------------------------------------------------------
def timings(fn: Callable[[], object], reps: int, warmup: int, budget_s: float) -> np.ndarray:
    """Seconds per call; stops early once ``budget_s`` is spent (at least 3 timed calls)."""
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
        if time.perf_counter() - start > budget_s / 4:
            break
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
        if len(out) >= 3 and time.perf_counter() - start > budget_s:
            break
    return np.array(out)


def flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def conv_reference(q: dict) -> float:
    """GFLOP/s of one 3x3 conv 256->256, 16x16, batch 64, fp32 eager: the machine's yardstick."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval()
    x = torch.randn(64, 256, 16, 16)
    with torch.inference_mode():
        f = flops(lambda: conv(x))
        t = timings(lambda: conv(x), q["b64_reps"], 2, q["budget"])
    return f / np.median(t) / 1e9


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True  # unknown: measure it


# ---- models and paths ---------------------------------------------------------------------------
def models() -> list[tuple[str, torch.nn.Module]]:
    if DEFAULT_WEIGHTS.is_file():
        shipped = load_model(None)
        note = f"shipped {shipped.pretrained_cfg['model']} ({DEFAULT_WEIGHTS.name})"
    else:
        shipped = create_model("resemotenet_s", num_classes=7, in_chans=1).eval()
        spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
        shipped.pretrained_cfg = make_meta("resemotenet_s", {"num_classes": 7, "in_chans": 1}, spec, EMOTIONS7)
        note = "shipped: none installed, random resemotenet_s"
    full = create_model("resemotenet", num_classes=7, in_chans=3).eval()
    full.pretrained_cfg = make_meta("resemotenet", {"num_classes": 7, "in_chans": 3}, PreprocessSpec(), EMOTIONS7)
    return [(note, shipped), ("full resemotenet, random weights", full)]


def faces(q: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """(check/timing faces, calibration faces, where they came from): real FER2013 when present."""
    test, val = fer2013_split("test"), fer2013_split("val")
    if test is None or val is None:
        return synthetic_faces(256), synthetic_faces(q["calib"], seed=1), "synthetic face-like images (no FER2013)"
    rng = np.random.default_rng(0)
    calib = val.images[np.sort(rng.permutation(len(val))[:q["calib"]])]
    return test.images[:256], calib, "FER2013 (PrivateTest for checks and timing, PublicTest for calibration)"


def torch_paths(model: torch.nn.Module) -> dict[str, Callable[[torch.Tensor], object]]:
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def eager(x: torch.Tensor) -> object:
        return model(x)

    def channels_last(x: torch.Tensor) -> object:
        return cl(x.contiguous(memory_format=torch.channels_last))

    def bf16(x: torch.Tensor) -> object:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x)

    return dict(zip(PATHS[:3], (eager, channels_last, bf16)))


def onnx_paths(model: torch.nn.Module, check: np.ndarray, calib: np.ndarray, folder: Path,
               threads: int) -> tuple[dict[str, Callable], str]:
    fp32, int8 = folder / "fp32.onnx", folder / "int8.onnx"
    r = export_onnx(model, fp32, check_images=check, force=True)
    quantize_onnx(fp32, int8, calibration=calib, calibration_size=len(calib), force=True, evaluate=False)
    out = {}
    for name, path in ((PATHS[3], fp32), (PATHS[4], int8)):
        sess = ort_session(path, threads)
        inp = sess.get_inputs()[0].name
        out[name] = lambda x, s=sess, i=inp: s.run(None, {i: x})
    return out, f"parity {r['max_abs_diff']:.1e} / argmax {r['argmax_same']}/{r['n_check']}"


def bench_model(note: str, model: torch.nn.Module, check: np.ndarray, calib: np.ndarray, q: dict,
                threads: int, folder: Path) -> dict:
    spec = PreprocessSpec.from_dict(model.pretrained_cfg["preprocess"])
    x = preprocess_batch(check, spec)
    x1, x64 = x[:1].clone(), x[np.arange(64) % len(x)].contiguous()
    with torch.inference_mode():
        per_img = flops(lambda: model(x1))
    paths: dict[str, Callable] = dict(torch_paths(model))
    onnx, parity = onnx_paths(model, check[:q["check"]], calib, folder, threads)
    paths.update(onnx)
    rows = {}
    bf16_ok = native_bf16()
    for name, fn in paths.items():
        a1, a64 = (x1.numpy(), x64.numpy()) if name.startswith("onnx") else (x1, x64)
        with torch.inference_mode():
            lat = timings(lambda f=fn, a=a1: f(a), q["b1_reps"], q["warmup"], q["budget"]) * 1e3
            thr = None
            if bf16_ok or "bf16" not in name:
                t64 = timings(lambda f=fn, a=a64: f(a), q["b64_reps"], 1, q["budget"])
                thr = 64 / np.median(t64)
        rows[name] = {"b1_med": float(np.median(lat)), "b1_p90": float(np.percentile(lat, 90)), "b64": thr}
    return {"note": note, "spec": spec, "gflop": per_img / 1e9, "rows": rows, "parity": parity}


# ---- report -------------------------------------------------------------------------------------
def table(results: list[dict], ref: float) -> None:
    print(f"{'model / path':34s} {'b1 median':>10s} {'b1 p90':>9s} {'b64 img/s':>10s} {'GFLOP/s':>8s} {'x conv ref':>10s}")
    for res in results:
        s = res["spec"]
        print(f"{res['note']} ({s.size}x{s.size}x{s.channels}, {res['gflop'] * 1e3:.1f} MFLOP/face; "
              f"export {res['parity']})")
        for name, r in res["rows"].items():
            if r["b64"] is None:
                b64 = gf = frac = "n/a"
            else:
                g = res["gflop"] * r["b64"]
                b64, gf, frac = f"{r['b64']:,.0f}", f"{g:.1f}", f"{g / ref:.2f}"
            print(f"  {name:32s} {r['b1_med']:8.3f}ms {r['b1_p90']:7.3f}ms {b64:>10s} {gf:>8s} {frac:>10s}")


def best(res: dict, key: str, paths: tuple[str, ...] = PATHS) -> tuple[str, float]:
    rows = {k: v for k, v in res["rows"].items() if k in paths and v[key] is not None}
    pick = min if key.startswith("b1") else max
    name = pick(rows, key=lambda k: rows[k][key])
    return name, rows[name][key]


def targets(results: list[dict], ref: float) -> None:
    shipped, full = results
    b1_name, b1 = best(shipped, "b1_med")
    speedup = shipped["rows"][PATHS[0]]["b1_med"] / b1
    b64_name, b64 = best(shipped, "b64")
    f1_name, f1 = best(full, "b1_med")
    lines = [
        ("shipped best batch-1 median <= 0.4 ms", f"{b1:.3f} ms ({b1_name})", b1 <= 0.4),
        ("shipped best batch-1 >= 5x torch fp32 eager", f"{speedup:.1f}x", speedup >= 5),
        ("shipped best batch-64 >= 5,000 faces/s", f"{b64:,.0f}/s ({b64_name})", b64 >= 5000),
        ("full best batch-1 median <= 4 ms", f"{f1:.3f} ms ({f1_name})", f1 <= 4),
    ]
    for res, label in ((full, "full"), (shipped, "shipped")):
        name, thr = best(res, "b64", FP32_PATHS)
        frac = res["gflop"] * thr / ref
        lines.append((f"{label} best fp32 batch-64 >= 0.7 of conv ref", f"{frac:.2f} ({name})", frac >= 0.7))
    print(f"\n{'target':46s} {'measured':30s} status")
    for text, value, ok in lines:
        print(f"{text:46s} {value:30s} {'met' if ok else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    tune_allocator()
    torch.set_num_threads(args.threads)
    q = ({"warmup": 3, "b1_reps": 30, "b64_reps": 3, "budget": 3.0, "calib": 64, "check": 32} if args.quick else
         {"warmup": 20, "b1_reps": 300, "b64_reps": 10, "budget": 20.0, "calib": 512, "check": 256})
    ref = conv_reference(q)
    check, calib, source = faces(q)
    import onnxruntime

    print(f"{cpu_name()}, {args.threads} thread(s); torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}"
          f"{', quick run' if args.quick else ''}")
    print(f"faces: {source}; int8 calibrated on {len(calib)} faces")
    print(f"conv reference (3x3 256->256, 16x16, batch 64, fp32 torch): {ref:.1f} GFLOP/s")
    if not native_bf16():
        print("bf16: this CPU has no native bf16, autocast runs emulated; batch-64 bf16 is skipped")
    results = []
    with tempfile.TemporaryDirectory(prefix="resemotenet-bench-") as tmp:
        for i, (note, model) in enumerate(models()):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            results.append(bench_model(note, model, check, calib, q, args.threads, folder))
    print()
    table(results, ref)
    targets(results, ref)
    return 0


if __name__ == "__main__":
    sys.exit(main())
