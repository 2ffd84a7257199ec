"""Training speed on this CPU, printed as figures (not a test).

1. ResEmoteNet training throughput at 64x64 (images/s and achieved GFLOP/s), fp32 and bf16
   autocast, beside a reference timed in the same run: one large 3x3 convolution (256->256
   channels, 16x16, batch 64, forward + backward), the best this CPU and PyTorch do on the
   model's main operation. Target: the model's fp32 step reaches >= 0.5 of the reference.
   Rows: memory layout (channels_last or contiguous) x convolutions (every tap, as nn.Conv2d
   runs them, or ``Conv2dLiveTaps``, which skips the taps that only see zero padding on the last
   stages' 2x2 and 1x1 maps). GFLOP/s is counted on the padded model's FLOPs for every row
   (the work the official layers define), so rows compare as speed.
2. The input pipeline is never the bottleneck: compact-model training steps with batched
   augmentation take <= 1.25x the time of the same steps on pre-made tensors.

    python benchmarks/train_speed.py [--model resemotenet] [--batch 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _timing import cpu_name, median_seconds
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from resemotenet.config import AugmentConfig, PreprocessSpec, TrainConfig
from resemotenet.data.transforms import augment_batch
from resemotenet.engine.trainer import make_optimizer
from resemotenet.models import create_model
from resemotenet.models.layers import plain_convs
from resemotenet.utils.runtime import native_bf16, tune_allocator


def flops_of(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    return median_seconds(fn, repeats, warmup)


def conv_reference(repeats: int) -> tuple[float, float]:
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.randn(64, 256, 16, 16).contiguous(memory_format=torch.channels_last).requires_grad_()

    def step():
        conv(x).sum().backward()

    return flops_of(step), median_time(step, repeats)


def train_step_fn(
    name: str, batch: int, size: int, chans: int, bf16: bool, live_taps: bool = True, channels_last: bool = True
):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model(name, in_chans=chans)
    if not live_taps:
        plain_convs(model)
    model = model.to(memory_format=fmt).train()
    # the trainer's own optimizer (fused where this torch has the kernel), at the paper's settings
    opt = make_optimizer(TrainConfig(optimizer="sgd", lr=1e-3, momentum=0.9, nesterov=False, weight_decay=1e-4), model)
    x = torch.randn(batch, chans, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, 7, (batch,))

    def step(inp=x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(inp).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resemotenet")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pipeline-steps", type=int, default=60, help="input-pipeline steps timed; 0 skips part 2")
    args = ap.parse_args()
    tune_allocator()
    print(
        f"{time.strftime('%Y-%m-%d')}; {cpu_name()} ({torch.backends.cpu.get_cpu_capability()}); "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    ref_flops, ref_t = conv_reference(args.repeats * 4)
    ref_gflops = ref_flops / ref_t / 1e9
    print(f"\n1. training throughput, {args.model} at 64x64, batch {args.batch} (median of {args.repeats})")
    bf16_ok = native_bf16()  # AVX512_BF16 or AMX in /proc/cpuinfo: AVX-512 alone emulates bf16 slowly
    nominal = flops_of(train_step_fn(args.model, args.batch, 64, 3, False, live_taps=False))
    print(f"{'path':44s} {'img/s':>8s} {'GFLOP/s':>8s} {'x reference':>12s}")
    print(f"{'reference conv3x3 256->256 fwd+bwd':44s} {'':>8s} {ref_gflops:8.1f} {1.0:12.2f}")
    rows = [
        ("fp32 channels_last, every tap", False, False, True),
        ("fp32 channels_last, live taps", False, True, True),
        ("fp32 contiguous, every tap", False, False, False),
        ("fp32 contiguous, live taps", False, True, False),
        ("bf16 autocast channels_last, live taps", True, True, True),
        ("bf16 autocast contiguous, live taps", True, True, False),
    ]
    for label, bf16, live, cl in rows:
        if bf16 and not bf16_ok:
            print(f"{label:44s} skipped: this CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag)")
            continue
        step = train_step_fn(args.model, args.batch, 64, 3, bf16, live_taps=live, channels_last=cl)
        t = median_time(step, args.repeats)
        print(f"{label:44s} {args.batch / t:8.1f} {nominal / t / 1e9:8.1f} {nominal / t / 1e9 / ref_gflops:12.2f}")
        del step
    print("target: fp32 step >= 0.50 x reference")
    if args.pipeline_steps <= 0:
        return

    print(f"\n2. input pipeline, resemotenet_s 48x48x1, batch 64, {args.pipeline_steps} steps, augmentation on")
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    aug = AugmentConfig(shift=0.1, scale=(0.9, 1.1), rotate=10, brightness=0.2, contrast=0.2, erasing=0.25)
    gen = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (args.pipeline_steps, 64, 1, 48, 48), dtype=torch.uint8)
    made = [augment_batch(b, spec, aug, gen).contiguous(memory_format=torch.channels_last) for b in raw]
    step = train_step_fn("resemotenet_s", 64, 48, 1, False)

    def with_pipeline():
        for b in raw:
            step(augment_batch(b, spec, aug, gen).contiguous(memory_format=torch.channels_last))

    def premade():
        for x in made:
            step(x)

    runs = [(median_time(premade, 1, 1), median_time(with_pipeline, 1, 0)) for _ in range(3)]
    t_pre = statistics.median(r[0] for r in runs)
    t_aug = statistics.median(r[1] for r in runs)
    print(f"pre-made tensors   {t_pre:6.2f} s  ({args.pipeline_steps * 64 / t_pre:6.0f} img/s)")
    print(f"with augmentation  {t_aug:6.2f} s  ({args.pipeline_steps * 64 / t_aug:6.0f} img/s)")
    print(f"ratio {t_aug / t_pre:.3f} (target <= 1.25)")


if __name__ == "__main__":
    main()
