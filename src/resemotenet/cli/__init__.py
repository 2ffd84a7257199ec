"""The ``resemotenet`` command: ``main(argv) -> int``.

Each subcommand lives in its own module of this package with ``add_parser(subparsers)`` and
``run(args) -> int``: parse, build a config, make one library call, print. Library errors
(``ResEmoteNetError``) become one line on stderr and exit code 2. A write that fails for want of
space or permission is one line too. Anything unexpected is one line plus a pointer to
``--debug``, which shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .._version import __version__
from ..utils.errors import ResEmoteNetError

# command name -> module in this package (imported to build the parser; heavy imports live
# inside each module's ``run``).
COMMANDS = {
    "train": "train",
    "distill": "train",
    "eval": "evaluate",
    "info": "info",
    "predict": "predict",
    "demo": "predict",
    "export": "export",
    "quantize": "export",
    "average": "train",
    "audit": "trust",
    "calibrate": "trust",
    "report": "trust",
    "serve": "serve",
    "finetune": "finetune",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resemotenet", description="Facial emotion recognition with ResEmoteNet.")
    parser.add_argument("--version", action="version", version=f"resemotenet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an unexpected error")
    parser.add_argument("--verbose", action="store_true", help="keep OpenCV's and FFmpeg's own log messages")
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
    from ..utils.runtime import quiet_third_parties, tune_allocator

    tune_allocator()
    if not args.verbose:
        quiet_third_parties()
    try:
        return int(args.func(args) or 0)
    except ResEmoteNetError as exc:
        print(f"resemotenet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"resemotenet {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permission denied, ... at a write site without its own message
        if args.debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"resemotenet {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line, the traceback on request
        if args.debug:
            raise
        text = str(exc).splitlines()[0][:300] if str(exc) else ""
        print(
            f"resemotenet {args.command}: unexpected error: {type(exc).__name__}: {text} "
            f"(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 3
