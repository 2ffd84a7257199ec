"""Progress bars for every job longer than a few seconds: tqdm on stderr, shown only on a
terminal (a log file or a pipe gets none of the carriage-return noise)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def shown(enabled: bool = True, file: Any = None) -> bool:
    return enabled and (file or sys.stderr).isatty()


def progress(
    iterable: Iterable[T] | None = None,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    file: Any = None,
    **kw: Any,
) -> Any:
    """A ``tqdm`` bar (``iterable`` wrapped, or updated by hand when None) on ``file``
    (default: standard error)."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not shown(enabled, file),
        leave=False,
        dynamic_ncols=True,
        file=file or sys.stderr,
        **kw,
    )


def track(
    iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it", enabled: bool = True
) -> Iterator[T]:
    """Iterate with a bar (none when not ``enabled``); the bar closes when the loop ends or breaks."""
    bar = progress(iterable, total=total, desc=desc, unit=unit, enabled=enabled)
    try:
        yield from bar
    finally:
        bar.close()
