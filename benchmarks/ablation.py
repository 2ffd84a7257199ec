"""Ablation of ResEmoteNet's parts at compact width: the full model against the same network
without squeeze-and-excitation, without residual connections, and without both, trained with
one recipe (configs/fer2013_s.yaml, epoch budget from --epochs) and several seeds each.

Every finished run is one JSON line in ``OUTPUT/ledger.jsonl``; started again, the script skips
runs already in the ledger and resumes an interrupted one from its ``last.pt``, so the study can
be spread over several sittings. Selection is on PublicTest (val), the report on PrivateTest.

    python benchmarks/ablation.py [--epochs 8] [--seeds 0,1,2] [--output runs/ablation]
    python benchmarks/ablation.py --data fer2013:tests/fixture.csv --epochs 1 --limit 200   # smoke run

The default budget (8 epochs) is about 10 minutes per run on a 2-core CPU (~72 s per epoch).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

VARIANTS = ("resemotenet_s", "resemotenet_s_nose", "resemotenet_s_nores", "resemotenet_s_plain")
ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "fer2013_s.yaml"), help="base recipe")
    p.add_argument("--data", help="NAME:PATH (default: the recipe's data)")
    p.add_argument("--epochs", type=int, default=8, help="epoch budget per run (about 72 s each on 2 cores)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--output", default="runs/ablation", help="folder for the runs and ledger.jsonl")
    p.add_argument("--limit", type=int, help="samples per split (smoke runs only)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other config override")
    return p.parse_args(argv)


def recipe_overrides(args: argparse.Namespace) -> list[str]:
    """Overrides shared by every run of this study (variant, seed and folder come per run)."""
    from resemotenet.cli.common import parse_data_spec

    out = [f"epochs={args.epochs}", "progress=false"]
    if args.data:
        name, path = parse_data_spec(args.data)
        out += [f"data.name={name}", f"data.root={json.dumps(path)}"]
    if args.limit:
        out.append(f"data.limit={args.limit}")
    return out + list(args.set)


def recipe_key(cfg_dict: dict[str, Any]) -> str:
    """Digest of a resolved config without what varies between the runs of one study."""
    d = {k: v for k, v in cfg_dict.items() if k not in ("output", "seed", "progress")}
    d["model"] = {k: v for k, v in d["model"].items() if k != "name"}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_ledger(path: Path, entry: dict[str, Any]) -> None:
    """One line per finished run, appended and flushed (a crash never loses earlier lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()


def run_one(args: argparse.Namespace, variant: str, seed: int, out: Path) -> dict[str, Any]:
    from resemotenet.config import load_config
    from resemotenet.engine.trainer import train

    base = load_config(args.config, recipe_overrides(args))
    key = recipe_key(base.to_dict())
    run_dir = out / f"{variant}_seed{seed}_{key}"
    cfg = load_config(
        args.config,
        recipe_overrides(args) + [f"model.name={variant}", f"seed={seed}", f"output={json.dumps(str(run_dir))}"],
    )
    resuming = (run_dir / "last.pt").is_file()
    print(f"== {variant} seed {seed}: {'resuming' if resuming else 'training'} in {run_dir}", flush=True)
    t0 = time.perf_counter()
    from pathlib import Path

    started = (Path(cfg.output) / "last.pt").is_file()
    # an interrupted run continues exactly; a run folder without last.pt (killed before its first
    # epoch ended) starts over
    result = train(cfg, resume=started, force=not started)
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    val = [float(r["val_acc"]) for r in rows]
    tail = max(1, round(0.2 * len(val)))  # converged: the last 20 % of epochs add < 0.5 points
    gain = max(val[-tail:]) - max(val[:-tail]) if len(val) > tail else float("nan")
    return {
        "recipe": key,
        "variant": variant,
        "seed": seed,
        "epochs": cfg.epochs,
        "data": f"{cfg.data.name}:{cfg.data.root}",
        "limit": cfg.data.limit,
        "val_acc": float(rows[-1]["best_val_acc"]),
        "test_acc": result["test"]["accuracy"],
        "test_macro_f1": result["test"]["macro_f1"],
        "best_epoch": result["test"]["best_epoch"],
        "last20_gain": round(gain, 4),
        "converged": bool(gain < 0.005),
        "seconds_this_sitting": round(time.perf_counter() - t0, 1),
        "run_dir": str(run_dir),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def paired_t(a: list[float], b: list[float]) -> tuple[float, float]:
    """Paired t statistic of a - b over seeds and its two-sided p-value (Student's t, n-1 degrees
    of freedom, the density integrated numerically: no SciPy needed)."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    sd = statistics.stdev(d) if n > 1 else 0.0
    if n < 2 or sd == 0:
        return float("nan"), float("nan")
    t, df = statistics.mean(d) / (sd / math.sqrt(n)), n - 1
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    steps, x_max = 20000, abs(t)
    h = x_max / steps
    area = sum(c * (1 + ((i + 0.5) * h) ** 2 / df) ** (-(df + 1) / 2) for i in range(steps)) * h
    return t, max(0.0, 1.0 - 2.0 * area)


def summary(entries: list[dict[str, Any]], variants: list[str]) -> str:
    """mean +- sample std of val and test accuracy per variant, runs converged, and a paired t-test
    of each variant against the first (the full model) over the seeds both have."""

    def ms(values: list[float]) -> str:
        if len(values) < 2:
            return f"{values[0]:.4f}" if values else "-"
        return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"

    lines = [
        f"{'variant':22s} {'n':>2s}  {'val (PublicTest)':>18s}  {'test (PrivateTest)':>18s}  "
        f"{'converged':>9s}  {'vs ' + variants[0] + ' (test, paired)':>30s}"
    ]
    by_seed = {v: {e["seed"]: e for e in entries if e["variant"] == v} for v in variants}
    for v in variants:
        mine = list(by_seed[v].values())
        conv = sum(bool(e.get("converged")) for e in mine)
        seeds = sorted(set(by_seed[v]) & set(by_seed[variants[0]]))
        if v == variants[0] or len(seeds) < 2:
            versus = "-"
        else:
            a = [by_seed[v][s]["test_acc"] for s in seeds]
            b = [by_seed[variants[0]][s]["test_acc"] for s in seeds]
            t, p = paired_t(a, b)
            versus = f"{100 * statistics.mean(x - y for x, y in zip(a, b)):+.2f} pt, t {t:.2f}, p {p:.3f}"
        lines.append(
            f"{v:22s} {len(mine):2d}  {ms([e['val_acc'] for e in mine]):>18s}  "
            f"{ms([e['test_acc'] for e in mine]):>18s}  {conv:>4d}/{len(mine):<4d}  {versus:>30s}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from resemotenet.utils.errors import ResEmoteNetError

    args = parse_args(argv)
    try:
        return study(args)
    except ResEmoteNetError as exc:
        print(f"ablation: error: {exc}", file=sys.stderr)
        return 2


def study(args: argparse.Namespace) -> int:
    from resemotenet.config import load_config
    from resemotenet.models import list_models
    from resemotenet.utils.runtime import tune_allocator

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in list_models()]
    if unknown:
        print(f"unknown model(s) {unknown}; valid: {', '.join(list_models())}", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    tune_allocator()
    out = Path(args.output)
    ledger = out / "ledger.jsonl"
    key = recipe_key(load_config(args.config, recipe_overrides(args)).to_dict())
    for variant in variants:
        for seed in seeds:
            done = {(e["variant"], e["seed"]) for e in read_ledger(ledger) if e["recipe"] == key}
            if (variant, seed) in done:
                print(f"== {variant} seed {seed}: finished earlier, skipped", flush=True)
                continue
            append_ledger(ledger, run_one(args, variant, seed, out))
    entries = [e for e in read_ledger(ledger) if e["recipe"] == key and e["seed"] in seeds]
    print(f"\nrecipe {key} ({args.epochs} epochs, seeds {args.seeds}; selection on val, one test report)")
    print(summary(entries, variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
