"""Atomic writes and file hashing: a crash or a full disk never leaves a half-written file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import OutputError, ResEmoteNetError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    On any error (including ``OSError: No space left on device``) the temporary file is
    removed and the destination is left as it was.
    """
    dst = Path(path)
    if dst.exists() and not force:
        raise ResEmoteNetError(f"{dst}: already exists (use --force to overwrite)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
        os.replace(tmp_path, dst)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            raise OutputError(f"{dst}: could not write ({exc.strerror or exc}); nothing was changed") from exc
        if isinstance(exc, Exception) and not isinstance(exc, ResEmoteNetError) and _is_write_failure(exc):
            raise OutputError(f"{dst}: could not write ({_why(dst)}); nothing was changed") from exc
        raise


# torch's zip writer and safetensors report a short write (a full disk) in their own exception
# types, with these words
_WRITE_FAILURES = (
    "inline_container",
    "unexpected pos",
    "PytorchStreamWriter",
    "file write failed",
    "No space left on device",
    "os error 28",
    "I/O error",
)


def _is_write_failure(exc: Exception) -> bool:
    return any(s in str(exc) for s in _WRITE_FAILURES)


def _why(dst: Path) -> str:
    import shutil

    try:
        free = shutil.disk_usage(dst.parent).free
    except OSError:
        return "the write failed"
    return "no space left on device" if free < (64 << 20) else "the write failed"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], force: bool = True) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path, force=force) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def cache_arrays(path: str | os.PathLike, **arrays) -> bool:
    """Keep ``arrays`` in a cache file (``.npy`` for one array named ``array``, else ``.npz``),
    written atomically, so a stopped process never leaves a truncated cache file. Best effort:
    a full disk or a read-only cache folder costs the cache, never the run (False is returned)."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save / np.savez would append a suffix to a path
            if list(arrays) == ["array"]:
                np.save(f, arrays["array"])
            else:
                np.savez(f, **arrays)

    try:
        atomic_write(path, write)
    except (OutputError, OSError):
        return False
    return True


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where parsed datasets and split files are cached (``RESEMOTENET_CACHE`` overrides)."""
    root = os.environ.get("RESEMOTENET_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "resemotenet"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
