"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse

from ..utils.errors import ConfigError


def parse_data_spec(spec: str) -> tuple[str, str]:
    """``NAME:PATH`` -> (reader name, path): ``resemotenet.data.parse_spec``, the one parser."""
    from ..data import parse_spec

    return parse_spec(spec)


def add_data_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument(
        "--data",
        required=required,
        metavar="NAME:PATH",
        help="dataset as NAME:PATH, NAME one of fer2013, ferplus, rafdb, affectnet, expw, folder",
    )
    p.add_argument(
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="reader option, e.g. mode=soft for ferplus (repeatable)",
    )
    p.add_argument("--split-file", help="saved train/val/test split to reuse (or to create)")


def check_positive(flag: str, value: int | None) -> None:
    """A count given on the command line (``--limit``, ...) must be at least 1 when given."""
    if value is not None and value < 1:
        raise ConfigError(f"{flag} must be >= 1, got {value}")


def data_options(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--data-option {item!r} must look like key=value")
        k, v = item.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


# ---- one vocabulary ---------------------------------------------------------------------------
# --model   weights: a shipped name (default, fast) or a file (.pt, .safetensors, .onnx)
# --arch    an architecture name from the registry (train)
# --data    a dataset as NAME:PATH
# --output  where results go (-o)
# --limit   use at most N samples;  --batch-size  samples per model call
class _Deprecated(argparse.Action):
    """An old spelling that still works for one release: stores into the new flag's ``dest`` and
    prints one line saying what to write instead."""

    def __init__(self, option_strings, dest, new: str = "", **kw):
        self.new = new
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        import sys

        print(f"resemotenet: {option_string} is deprecated and will be removed; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def deprecated(p: argparse.ArgumentParser, old: str, new: str, dest: str, **kw) -> None:
    p.add_argument(old, action=_Deprecated, new=new, dest=dest, help=argparse.SUPPRESS, **kw)


def add_predictor_args(p: argparse.ArgumentParser, *, min_confidence_help: str, detector_note: str = "") -> None:
    """--model, --detector, --min-confidence and --device, worded alike wherever faces are analysed
    (``predict``, ``serve``)."""
    p.add_argument(
        "--model",
        default="default",
        help="weights: a shipped name, default (96x96) or fast (48x48), a checkpoint or an .onnx file "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--detector",
        default="centerface",
        help=f"face detector: centerface, haar, mediapipe or yunet (default: %(default)s{detector_note})",
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        help=min_confidence_help + " (default: the model card's calibrated threshold; 0 switches it off)",
    )
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")


def add_model_arg(p: argparse.ArgumentParser, helptext: str, default: str | None = None) -> None:
    """``MODEL`` as a positional argument or as ``--model`` (the same word as predict and serve)."""
    p.add_argument("model_pos", nargs="?", metavar="MODEL", help=helptext)
    p.add_argument("--model", dest="model_opt", metavar="MODEL", help="the same as the positional MODEL")
    p.set_defaults(model_default=default)


def model_of(args: argparse.Namespace) -> str:
    """The MODEL a command was given (positional or --model), or a one-line error."""
    if args.model_pos and args.model_opt and args.model_pos != args.model_opt:
        raise ConfigError(f"two models given ({args.model_pos!r} and --model {args.model_opt!r}); give one")
    model = args.model_pos or args.model_opt or args.model_default
    if not model:
        raise ConfigError("no model given: pass MODEL (a shipped name such as 'default', or a file)")
    return model


def add_data_limit(
    p: argparse.ArgumentParser,
    data: tuple[str, str],
    limit: tuple[str, str],
    default: int | None,
    data_help: str,
    limit_help: str,
) -> None:
    """``--data NAME:PATH`` and ``--limit N`` for a command's auxiliary data, each with the old
    spelling (``data[1]``, ``limit[1]``) kept as a deprecated alias."""
    p.add_argument("--data", dest=data[0], metavar="NAME:PATH", help=data_help)
    suffix = " (default: %(default)s)" if default is not None else ""
    p.add_argument("--limit", dest=limit[0], type=int, default=default, help=limit_help + suffix)
    deprecated(p, data[1], "--data", data[0])
    deprecated(p, limit[1], "--limit", limit[0], type=int)
