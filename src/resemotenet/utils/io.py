"""Atomic writes and file hashing: a crash or a full disk never leaves a half-written file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import OutputError, OutputExistsError, ResEmoteNetError


# ---- the output rule -----------------------------------------------------------------------------
# Every command that writes a file or folder: check everything (arguments, model, inputs), then
# ``check_output`` (refuse an existing output unless --force, or --append where a command can add
# to it), then write through ``atomic_path`` (a temporary file beside the output, renamed onto it
# only when complete). A refused command leaves every existing file as it was.
def exists_message(path: str | os.PathLike, append: bool = False) -> str:
    """The one wording of an output that is already there, naming the flag(s) that get past it."""
    how = "use --force to overwrite" + (", or --append to add to it" if append else "")
    return f"{path}: already exists ({how})"


def check_output(path: str | os.PathLike, force: bool = False, append: bool = False, append_ok: bool = False) -> Path:
    """Refuse an existing output file unless ``force`` (replace it) or ``append`` (add to it);
    refuse a folder where a file is meant, and a destination whose folder cannot be made.
    ``append_ok``: the command has ``--append``, so the message names it too."""
    dst = Path(path)
    if dst.is_dir():
        raise OutputError(f"{dst}: is a folder; give a file name")
    if dst.exists() and not (force or append):
        raise OutputExistsError(exists_message(dst, append=append_ok))
    parent = dst.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{dst}: cannot be written ({parent} is a file, not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{dst}: cannot be written (no permission to write in {parent})")
    return dst


def check_output_dir(path: str | os.PathLike, force: bool = False, what: str = "") -> Path:
    """The same rule for an output folder: one that holds files is refused unless ``force``
    (files of the same name are then replaced, others kept). ``what``: the files that count,
    as a glob (default: any)."""
    dst = Path(path)
    if dst.exists() and not dst.is_dir():
        raise OutputError(f"{dst}: is a file; give a folder")
    there = next(dst.glob(what or "*"), None) if dst.is_dir() and not force else None
    if there is not None:
        raise OutputExistsError(exists_message(there if what else dst))
    return dst


def temp_beside(dst: Path) -> Path:
    """An empty temporary file ``.NAME.XXXX.tmp`` in the destination's folder (made if needed),
    so the final rename stays on one file system."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    return Path(tmp)


def commit_temp(tmp: Path, dst: Path) -> None:
    """Move a finished temporary file onto ``dst`` (normal permissions: mkstemp makes 0600)."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, dst)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    On any error (including ``OSError: No space left on device``) the temporary file is
    removed and the destination is left as it was. ``force=False`` refuses an existing
    ``path`` first (``check_output``).
    """
    dst = Path(path)
    if not force:
        check_output(dst)
    tmp_path = temp_beside(dst)
    try:
        yield tmp_path
        commit_temp(tmp_path, dst)
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


def load_cached(path: str | os.PathLike) -> Any:
    """What ``cache_arrays`` kept in ``path`` (a dict of arrays for ``.npz``, the array for
    ``.npy``), or None when there is none. A damaged file (truncated by a full disk or a copy,
    not a numpy file at all) is deleted with one line on stderr naming it, and None returned:
    the caller rebuilds it. A cache never ends a run."""
    import numpy as np

    cached = Path(path)
    if not cached.is_file():
        return None
    try:
        if cached.suffix == ".npz":
            with np.load(cached, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        return np.load(cached, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, ValueError, EOFError, zlib.error, OSError, ...
        cached.unlink(missing_ok=True)
        print(f"note: {cached}: damaged cache file ({type(exc).__name__}) removed; rebuilding it", file=sys.stderr)
        return None


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
