"""``resemotenet info``: version, models with parameter counts, datasets, the default model."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show models, datasets and the shipped default model")
    p.add_argument("checkpoint", nargs="?", help="describe this checkpoint instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from .. import __version__
    from ..data.readers import list_readers
    from ..models import create_model, list_models
    from ..models.checkpoint import SHIPPED, load_checkpoint

    if args.checkpoint:
        _, meta, _ = load_checkpoint(args.checkpoint)
        print(json.dumps(meta, indent=2))
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
            _, meta, _ = load_checkpoint(path)
            print(f"{shipped} model: {meta['model']} {meta['preprocess']} labels={meta['labels']}")
        else:
            print(f"{shipped} model: not installed")
    return 0
