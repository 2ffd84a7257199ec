"""Small helpers shared by the readers: reading label files, checking that images exist."""

from __future__ import annotations

import os
from pathlib import Path

from ...imaging import IMAGE_EXTS
from ...utils.errors import DataError

__all__ = ["IMAGE_EXTS", "is_image", "read_text_lines", "require_files", "subdirs"]


def read_text_lines(path: Path) -> list[str]:
    """Non-empty, stripped lines of a text label file (a missing final newline is fine)."""
    if not path.is_file():
        raise DataError(f"{path}: label file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def require_files(paths: list[str], root: Path, what: str = "images") -> None:
    """Fail early, in one line, when images a label file names are absent.

    Checking existence up front (a ``stat`` per file) beats failing after minutes of decoding,
    and the count tells a half-extracted archive apart from a wrong folder.
    """
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DataError(f"{root}: {len(missing):,} of {len(paths):,} {what} are missing; first missing: {missing[0]}")


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def subdirs(path: Path) -> list[Path]:
    """Visible subfolders, sorted (hidden ones such as ``.ipynb_checkpoints`` are skipped)."""
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
