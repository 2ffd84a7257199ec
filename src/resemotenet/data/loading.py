"""The one way to open a dataset: ``load("NAME:PATH", split=...)``.

Every entry point (train, eval, calibrate, audit, export's parity check, quantize's calibration,
averaging's batch-norm data) goes through here, so ``NAME:PATH`` has one parser and the honest
protocol (``dataset.build_splits``) is applied the same way everywhere.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import DataConfig
from ..utils.errors import ConfigError
from .dataset import Split, build_splits
from .readers import READERS, get_reader

SPLITS = ("train", "val", "test", "all")


def parse_spec(spec: str) -> tuple[str, str]:
    """``NAME:PATH`` -> (reader name, path); a bare path means FER2013. An unknown NAME is an error
    (unless the whole string is an existing path, such as ``C:\\data`` or ``a:b.csv``)."""
    name, sep, path = str(spec).partition(":")
    if sep and name in READERS:
        return name, path
    if sep and len(name) > 1 and not Path(spec).exists():
        raise ConfigError(f"unknown dataset {name!r} in {spec!r}; valid: {', '.join(sorted(READERS))}")
    return "fer2013", str(spec)


def as_config(data: str | DataConfig, **fields: Any) -> DataConfig:
    """A ``DataConfig`` from a spec string (``fields`` fill the rest) or a copy with ``fields`` set."""
    if isinstance(data, DataConfig):
        return replace(data, **{k: v for k, v in fields.items() if v is not None})
    name, root = parse_spec(data)
    return DataConfig(name=name, root=root, **{k: v for k, v in fields.items() if v is not None})


def load_splits(data: str | DataConfig, **fields: Any) -> dict[str, Split]:
    """{'train', 'val', 'test'} of a dataset under the honest protocol (``dataset.build_splits``)."""
    cfg = as_config(data, **fields)
    if not cfg.root:
        raise ConfigError("no dataset given: NAME:PATH, e.g. fer2013:fer2013.csv.gz")
    return build_splits(get_reader(cfg.name)(cfg.root, **cfg.options), cfg)


def load(data: str | DataConfig, split: str | None = None, **fields: Any) -> Split | dict[str, Split]:
    """One split (``train``, ``val``, ``test``, or ``all``: every image of a dataset without
    official splits, e.g. a folder of a team's own faces), or all three when ``split`` is None.
    ``fields`` are ``DataConfig`` fields: ``options``, ``limit``, ``split_file``, ..."""
    if split is not None and split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if split != "all":
        splits = load_splits(data, **fields)
        return splits if split is None else splits[split]
    cfg = as_config(data, **fields)
    official = get_reader(cfg.name)(cfg.root, **cfg.options)
    if "all" not in official:
        raise ConfigError(
            f"split 'all' scores a dataset without official splits (folder, expw); "
            f"{cfg.name} has {', '.join(sorted(official))}: pick one of them"
        )
    every = official["all"]
    return every.subset(range(min(len(every), cfg.limit))) if cfg.limit else every
