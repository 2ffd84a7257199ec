"""One reader per dataset format, looked up by name.

A reader is ``read(root, **options) -> dict[str, Split]`` returning the official splits under
the protocol names ``train`` / ``val`` / ``test`` (or ``all`` when a dataset has no official
split). It only does I/O and maps native labels through the tables in ``labels.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ...utils.errors import ConfigError

# name -> module; each module defines ``read``. Imported lazily so one reader's optional
# dependency never affects another.
READERS: dict[str, str] = {
    "fer2013": "fer2013",
    "ferplus": "ferplus",
    "rafdb": "rafdb",
    "affectnet": "affectnet",
    "expw": "expw",
    "folder": "folder",
}


def list_readers() -> list[str]:
    return sorted(READERS)


def get_reader(name: str) -> Callable:
    if name not in READERS:
        raise ConfigError(f"unknown dataset {name!r}; valid datasets: {', '.join(list_readers())}")
    return importlib.import_module(f"{__name__}.{READERS[name]}").read
