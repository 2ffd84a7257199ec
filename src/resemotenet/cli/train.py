"""``resemotenet train`` and ``resemotenet distill``."""

from __future__ import annotations

import argparse

from .common import add_data_args, add_data_limit, data_options, parse_data_spec

# flags passed to ``resemotenet.train`` as keywords of the same name (engine.trainer.KEYWORDS)
FLAG_KEYS = (
    "arch",
    "num_classes",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "scheduler",
    "output",
    "init_from",
    "seed",
    "patience",
    "limit",
    "teacher",
    "split_file",
    "exclude_file",
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    for name, helptext in (
        ("train", "train a model (YAML recipe + flag overrides)"),
        ("distill", "train a student from a frozen teacher's soft labels"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--config", help="YAML recipe, e.g. configs/paper_fer2013.yaml")
        add_data_args(p)
        p.add_argument("--arch", help="architecture name from the registry (resemotenet info lists them)")
        p.add_argument(
            "--model",
            help="weights to start from: a shipped name (default, fast) or a checkpoint; the same as --init-from",
        )
        p.add_argument("--num-classes", type=int)
        p.add_argument("--epochs", type=int)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--lr", type=float)
        p.add_argument("--optimizer", choices=["sgd", "adamw"])
        p.add_argument("--scheduler", choices=["cosine", "plateau", "onecycle", "constant"])
        p.add_argument("--output", "-o", help="run folder (config, results.csv, best.pt, last.pt)")
        p.add_argument(
            "--init-from",
            help="start from a checkpoint or a shipped model ('default', 'fast'); "
            "without --config, its architecture and preprocessing are kept too",
        )
        p.add_argument("--freeze-stem", action="store_true", help="train only the residual blocks and head")
        p.add_argument("--seed", type=int)
        p.add_argument("--patience", type=int, help="early stopping on validation accuracy (0 = off)")
        p.add_argument("--limit", type=int, help="use at most this many samples per split (smoke tests)")
        p.add_argument("--exclude-file", help="de-duplication file from 'resemotenet audit'")
        p.add_argument(
            "--amp",
            nargs="?",
            const="on",
            choices=["on", "off", "auto"],
            help="mixed precision (fp16 on GPU, bf16 on CPU); 'auto': only where the CPU has native bf16",
        )
        p.add_argument("--resume", action="store_true", help="continue the run in --output exactly (same settings)")
        p.add_argument("--force", action="store_true", help="replace a run already in --output")
        p.add_argument("--no-progress", action="store_true")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="any config key, e.g. augment.rotate=10 (repeatable)",
        )
        if name == "distill":
            p.add_argument("--teacher", required=True, help="teacher checkpoint (frozen)")
            p.add_argument("--alpha", type=float, help="weight of the distillation term (0..1)")
            p.add_argument("--temperature", type=float, help="softmax temperature of the soft labels")
        else:
            p.set_defaults(teacher=None, alpha=None, temperature=None)
        p.set_defaults(func=run)

    a = sub.add_parser("average", help="average the weights of checkpoints of one model (SWA-style)")
    a.add_argument("checkpoints", nargs="+", metavar="MODEL", help="two or more checkpoints of the same model")
    a.add_argument("--output", "-o", required=True, help="destination (.safetensors or .pt)")
    add_data_limit(
        a,
        ("bn_data", "--bn-data"),
        ("bn_size", "--bn-size"),
        None,
        "re-estimate batch-norm statistics on this dataset's training split (no augmentation)",
        "use the first N training images for the statistics",
    )
    a.add_argument("--half", action="store_true", help="store fp16 weights")
    a.add_argument("--force", action="store_true", help="overwrite an existing output file")
    a.set_defaults(func=run_average)


def run_average(args: argparse.Namespace) -> int:
    """Average checkpoints of one run (SWA-style), optionally re-estimating batch norms."""
    from ..engine.averaging import average_checkpoints
    from ..utils.io import check_output

    check_output(args.output, force=args.force)  # before the statistics' data is read
    bn_split = None
    if args.bn_data:
        from ..data import load

        bn_split = load(args.bn_data, "train", limit=args.bn_size)
    r = average_checkpoints(args.checkpoints, args.output, bn_split=bn_split, half=args.half, force=args.force)
    bn = f"; batch norms re-estimated on {r['bn_images']} training images" if r["bn_images"] else ""
    print(f"averaged {r['n']} checkpoints of {r['model']} -> {r['output']}{bn}")
    return 0


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """The flags as ``key=value`` config overrides (the older spelling of ``keywords_from_args``)."""
    import json

    from ..engine.trainer import KEYWORDS

    kw = keywords_from_args(args)
    out = []
    for k, v in kw.items():
        if k == "amp":
            out.append(f"amp={ {True: 'true', False: 'false'}.get(v, v) }")
        elif k in KEYWORDS:
            out.append(f"{KEYWORDS[k]}={json.dumps(v)}")
    if "data" in kw:
        name, path = parse_data_spec(kw["data"])
        out += [f"data.name={name}", f"data.root={json.dumps(path)}"]
    return out + kw.get("set", [])


def keywords_from_args(args: argparse.Namespace) -> dict:
    """The keywords of ``resemotenet.train`` the flags name (unset flags are left out)."""
    kw = {flag: getattr(args, flag, None) for flag in FLAG_KEYS}
    if args.data:
        parse_data_spec(args.data)  # a malformed NAME:PATH is refused in the CLI's words
        kw["data"] = args.data
        if args.data_option:
            kw["data_options"] = data_options(args.data_option)
    kw["freeze_stem"] = True if getattr(args, "freeze_stem", False) else None
    amp = getattr(args, "amp", None)
    kw["amp"] = None if amp is None else {"on": True, "off": False, "auto": "auto"}[amp]
    kw["progress"] = False if args.no_progress else None
    kw["alpha"], kw["temperature"] = args.alpha, args.temperature
    kw["set"] = list(args.set)
    return {k: v for k, v in kw.items() if v is not None}


def _model_flag(args: argparse.Namespace) -> None:
    """``--model`` means weights everywhere; a registry name there is the old spelling of ``--arch``."""
    import sys

    from ..models import list_models
    from ..utils.errors import ConfigError

    if args.model is None:
        return
    if args.model in list_models() and args.model not in ("default", "fast"):
        print(
            f"resemotenet {args.command}: --model {args.model} naming an architecture is deprecated and will be "
            f"removed; use --arch {args.model} (--model now means weights to start from)",
            file=sys.stderr,
        )
        args.arch = args.arch or args.model
    elif args.init_from and args.init_from != args.model:
        raise ConfigError(f"--model {args.model} and --init-from {args.init_from} name different weights; give one")
    else:
        args.init_from = args.model


def run(args: argparse.Namespace) -> int:
    from ..engine.trainer import train
    from ..utils.errors import ConfigError

    _model_flag(args)

    if args.resume and args.force:
        raise ConfigError("--resume continues the run in --output and --force replaces it: choose one")
    result = train(args.config, resume=args.resume, force=args.force, **keywords_from_args(args))
    _draw_curves(result["run_dir"])
    return 0


def _draw_curves(run_dir: str) -> None:
    from pathlib import Path

    from ..utils.errors import MissingExtraError

    try:
        from ..plots import training_curves

        training_curves(Path(run_dir) / "results.csv", Path(run_dir) / "curves.png")
    except (ImportError, MissingExtraError):  # matplotlib not installed: the csv is still there
        print("curves.png not drawn: matplotlib is not installed (pip install 'resemotenet[plot]')")
