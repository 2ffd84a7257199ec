"""``resemotenet info``: version, models with parameter counts, datasets, the default model."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show models, datasets and the shipped models; or one model's card")
    p.add_argument(
        "model",
        nargs="?",
        help="print the model card of this model: a shipped name (default, fast), "
        "a checkpoint, a .safetensors or an .onnx file",
    )
    p.add_argument("--json", action="store_true", help="print the card as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from .._version import __version__
    from ..data.readers import list_readers
    from ..models import create_model, list_models
    from ..models.checkpoint import SHIPPED, load_checkpoint

    if args.model:
        from ..inference.backends import read_card

        card = read_card(args.model)
        print(json.dumps(card.to_meta(), indent=2) if args.json else card.describe())
        return 0
    print(f"resemotenet {__version__} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print("models:")
    for name in list_models():
        with torch.device("meta"):
            n = sum(p.numel() for p in create_model(name).parameters())
        print(f"  {name:28s} {n:>12,d} parameters")
    print("datasets: " + ", ".join(list_readers()))
    for shipped, path in SHIPPED.items():
        if path.is_file():
            from ..card import ModelCard

            _, meta, _ = load_checkpoint(path)
            card = ModelCard.from_meta(meta, str(path))
            p = card.preprocess
            print(
                f"{shipped} model: {card.arch}, {p.size}x{p.size}x{p.channels}, labels {', '.join(card.labels)} "
                f"(resemotenet info {shipped})"
            )
        else:
            print(f"{shipped} model: not installed")
    return 0
