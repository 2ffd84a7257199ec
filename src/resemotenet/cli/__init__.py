"""The ``resemotenet`` command: ``main(argv) -> int``.

Each subcommand lives in its own module of this package with ``add_parser(subparsers)`` and
``run(args) -> int``: parse, build a config, make one library call, print. Library errors
(``ResEmoteNetError``) become one line on stderr and exit code 2; nothing else is caught, so a
real bug still shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..utils.errors import ResEmoteNetError

# command name -> module in this package (imported to build the parser; heavy imports live
# inside each module's ``run``).
COMMANDS = {
    "train": "train", "distill": "train", "eval": "evaluate", "info": "info",
    "predict": "predict", "demo": "predict", "export": "export", "quantize": "export", "average": "export",
    "audit": "trust", "calibrate": "trust", "report": "trust", "serve": "serve",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resemotenet", description="Facial emotion recognition with ResEmoteNet.")
    parser.add_argument("--version", action="version", version=f"resemotenet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in dict.fromkeys(COMMANDS.values()):
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{module}":
                continue  # a command group not shipped in this build
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ..utils.runtime import tune_allocator

    tune_allocator()
    try:
        return int(args.func(args) or 0)
    except ResEmoteNetError as exc:
        print(f"resemotenet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"resemotenet {args.command}: interrupted", file=sys.stderr)
        return 130
