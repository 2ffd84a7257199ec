"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..utils.errors import ConfigError


def parse_data_spec(spec: str) -> tuple[str, str]:
    """``NAME:PATH`` -> (reader name, path); a bare path means FER2013."""
    from ..data.readers import READERS

    name, sep, path = spec.partition(":")
    if sep and name in READERS:
        return name, path
    if sep and len(name) > 1 and not Path(spec).exists():
        raise ConfigError(f"unknown dataset {name!r} in {spec!r}; valid: {', '.join(sorted(READERS))}")
    return "fer2013", spec


def add_data_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--data", required=required, metavar="NAME:PATH",
                   help="dataset as NAME:PATH, NAME one of fer2013, ferplus, rafdb, affectnet, expw, folder")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="reader option, e.g. mode=soft for ferplus (repeatable)")
    p.add_argument("--split-file", help="saved train/val/test split to reuse (or to create)")


def data_options(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--data-option {item!r} must look like key=value")
        k, v = item.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out
