"""``resemotenet finetune``: adapt a model to a site's labelled faces and measure it honestly."""

from __future__ import annotations

import argparse

from .common import parse_data_spec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a model on a site's labelled faces; before/after on held-out groups",
        description="Split the site's faces by group (groups.csv), fine-tune BASE on the training groups, "
        "choose the epoch and recalibrate on validation groups, and compare with BASE on held-out groups "
        "(accuracy with 95 %% intervals, the paired difference and its verdict). Writes OUTPUT/model.safetensors "
        "(BASE's card inherited: framing, alignment, preprocessing, labels) and OUTPUT/report.json.",
    )
    p.add_argument("base", nargs="?", default="default", help="weights to start from (default: the shipped default)")
    p.add_argument("--data", required=True, metavar="folder:DIR", help="the site's faces: DIR/<emotion>/*.jpg")
    p.add_argument("--output", "-o", required=True, help="folder for model.safetensors, report.json, history.csv")
    p.add_argument(
        "--layers",
        default="full",
        choices=["head", "partial", "full"],
        help="what learns: everything (default, measured best on SFEW), the last block and the head, or the head",
    )
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=0.003)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--no-augment", action="store_true", help="train on the faces as they are")
    p.add_argument(
        "--rehearsal-data",
        metavar="fer2013:PATH",
        help="FER2013 csv whose training faces are mixed into every batch against forgetting",
    )
    p.add_argument("--rehearsal", type=float, default=0.5, help="share of each batch from --rehearsal-data")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.site import finetune
    from ..engine.finetune import FinetuneRecipe
    from ..utils.errors import ConfigError

    name, path = parse_data_spec(args.data)
    if name != "folder":
        raise ConfigError(f"--data must be folder:DIR (a site's own faces), got {name}:")
    recipe = FinetuneRecipe(
        layers=args.layers,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        augment=not args.no_augment,
        rehearsal=args.rehearsal if args.rehearsal_data else 0.0,
        seed=args.seed,
    )

    def progress(epoch: int, total: int, row: dict[str, float]) -> None:
        print(f"epoch {epoch}/{total} train_loss {row['train_loss']:.4f} val_acc {row['val_acc']:.4f}", flush=True)

    report = finetune(
        args.base, path, args.output, recipe, rehearsal_data=args.rehearsal_data, force=args.force, progress=progress
    )
    print(describe(report, args.output))
    return 0


def describe(report: dict, output: str) -> str:
    """The before/after as a person reads it."""
    h = report["held_out"]
    lines = [
        f"held out: {h['faces']} faces in {h['groups']} groups (never trained on, never used to choose the epoch)",
    ]
    for part in ("all", "uncertain", "confident"):
        r = h[part]
        if not r.get("faces"):
            continue
        b, a, d = r["before"], r["after"], r["difference"]
        lines.append(
            f"  {part:9s} {r['faces']:4d} faces: before {100 * b['estimate']:.1f} % [{100 * b['low']:.1f}, "
            f"{100 * b['high']:.1f}], after {100 * a['estimate']:.1f} % [{100 * a['low']:.1f}, {100 * a['high']:.1f}], "
            f"difference {100 * d['estimate']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]: {r['verdict']}"
        )
    more = h["all"]["more_faces_for_half_width"]
    ((w, n),) = more.items()
    lines.append(
        f"verdict: {h['verdict']} (about {n} more held-out faces for a +-{100 * float(w):.0f}-point difference)"
    )
    if h["regression_on_confident"]:
        lines.append("warning: worse on faces the base model was sure of")
    lines.append(
        f"best epoch {report['best_epoch']}; temperature {report['temperature']:.3f}; threshold {report['threshold']}"
    )
    lines.append(f"wrote {output}/model.safetensors and {output}/report.json")
    return "\n".join(lines)
