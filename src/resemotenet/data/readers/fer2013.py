"""FER2013 (Goodfellow et al. 2013) in its official Kaggle csv form.

Accepted: ``fer2013.csv``, ``fer2013.csv.gz``, the challenge archive ``fer2013.tar.gz`` (which
holds ``fer2013/fer2013.csv``), or a folder containing one of them. Columns ``emotion, pixels,
Usage``; ``pixels`` is 2,304 space-separated values (48 x 48). The csv is parsed once into a
uint8 cache keyed by the file's SHA-256; later loads read the cache.
Protocol: train = Training, val = PublicTest, test = PrivateTest.
The popular image-folder layout (``train/<class>/*.jpg``, ``test/<class>/PublicTest_*.jpg``)
is handled by ``fer2013_folder``.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import tarfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...labels import EMOTIONS7, FER2013_TO_CANON
from ...utils.errors import DataError
from ...utils.io import cache_arrays, cache_dir, file_sha256, load_cached
from ..dataset import Split
from .votes import USAGES, parse_votes, soft_labels

PROTOCOL = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SIDE = 48


def find_csv(root: str | Path) -> Path:
    p = Path(root)
    if p.is_dir():
        for name in ("fer2013.csv", "fer2013.csv.gz", "fer2013.tar.gz", "fer2013/fer2013.csv"):
            if (p / name).is_file():
                return p / name
        if (p / "train").is_dir():
            return p
        raise DataError(f"{p}: no fer2013.csv, fer2013.csv.gz or fer2013.tar.gz in this folder")
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    return p


@contextlib.contextmanager
def _open_text(path: Path) -> Iterator[io.TextIOBase]:
    """The csv as text, whether plain, gzip-compressed or inside the challenge's tar archive."""
    name = path.name.lower()
    try:
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(path) as tar:
                member = next((m for m in tar.getmembers() if m.name.endswith("fer2013.csv")), None)
                if member is None:
                    raise DataError(f"{path}: archive holds no fer2013.csv")
                with io.TextIOWrapper(tar.extractfile(member), encoding="utf-8", newline="") as f:
                    yield f
        elif name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
                yield f
        else:
            with open(path, encoding="utf-8", newline="") as f:
                yield f
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{path}: cannot read, truncated or corrupt ({exc})") from exc


def parse_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Parse the csv into ``pixels`` (N, 48, 48) uint8, ``emotion`` (N,), ``usage`` (N,) codes."""
    path = Path(path)
    emotions, usages, pixel_rows = [], [], []
    try:
        with _open_text(path) as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in ("emotion", "pixels", "Usage") if c not in header]
            if missing:
                raise DataError(f"{path}: missing column(s) {missing}; header is {header}")
            ie, ip, iu = header.index("emotion"), header.index("pixels"), header.index("Usage")
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    emo, pix, use = int(row[ie]), row[ip], row[iu].strip()
                except (IndexError, ValueError):
                    raise DataError(f"{path}: line {line}: malformed row") from None
                if pix.count(" ") != SIDE * SIDE - 1:
                    raise DataError(
                        f"{path}: line {line}: pixels has {len(pix.split())} values, expected {SIDE * SIDE}"
                    )
                if use not in USAGES:
                    raise DataError(f"{path}: line {line}: unknown Usage {use!r}; valid: {', '.join(USAGES)}")
                if emo not in FER2013_TO_CANON:
                    raise DataError(f"{path}: line {line}: emotion {emo} is not a FER2013 label (0-6)")
                emotions.append(FER2013_TO_CANON[emo])
                usages.append(USAGES.index(use))
                pixel_rows.append(pix)
    except (EOFError, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: truncated or corrupt ({exc})") from exc
    if not pixel_rows:
        raise DataError(f"{path}: no rows")
    with warnings.catch_warnings():  # text-mode fromstring is the fastest parser numpy has
        warnings.simplefilter("ignore", DeprecationWarning)
        flat = np.fromstring(" ".join(pixel_rows), dtype=np.int16, sep=" ")
    if flat.size != len(pixel_rows) * SIDE * SIDE:
        raise DataError(f"{path}: pixels hold non-numeric values")
    if flat.min() < 0 or flat.max() > 255:
        raise DataError(f"{path}: pixel values outside 0..255")
    return {
        "pixels": flat.astype(np.uint8).reshape(-1, SIDE, SIDE),
        "emotion": np.array(emotions, np.int64),
        "usage": np.array(usages, np.int8),
    }


def load_arrays(path: str | Path, use_cache: bool = True) -> dict[str, np.ndarray]:
    """``parse_csv`` with a cache keyed by the file's SHA-256 (first parse ~10 s, then < 1 s)."""
    path = Path(path)
    if not use_cache:
        return parse_csv(path)
    cached = cache_dir() / f"fer2013-{file_sha256(path)[:16]}.npz"
    if (arrays := load_cached(cached)) is not None:  # a damaged cache file is dropped and rebuilt
        return arrays
    arrays = parse_csv(path)
    cache_arrays(cached, **arrays)
    return arrays


def read(
    root: str | Path, use_cache: bool = True, ferplus: str | Path | None = None, ferplus_weight: float = 0.5
) -> dict[str, Split]:
    """FER2013's splits with FER2013's labels. ``ferplus=PATH`` (``fer2013new.csv``) adds FER+
    crowd votes as soft training targets: ``(1 - ferplus_weight) * one_hot(FER2013 label) +
    ferplus_weight * FER+ vote distribution`` on Training rows (rows FER+ marks as not-a-face or
    unknown keep their one-hot target). Validation and test keep FER2013's labels, so selection
    and the reported numbers stay comparable with every other FER2013 result."""
    path = find_csv(root)
    if path.is_dir():
        if ferplus is not None:
            raise DataError(f"{path}: ferplus= joins FER+ votes by csv row order; an image folder cannot be")
        from .fer2013_folder import read as read_folder

        return read_folder(path)
    a = load_arrays(path, use_cache)
    soft = None if ferplus is None else blended_targets(a, Path(ferplus), float(ferplus_weight))
    out = {}
    for code, usage in enumerate(USAGES):
        idx = np.flatnonzero(a["usage"] == code)
        split_soft = soft[idx] if soft is not None and usage == "Training" else None
        out[PROTOCOL[usage]] = Split(
            name=PROTOCOL[usage],
            labels=a["emotion"][idx],
            label_names=EMOTIONS7,
            images=a["pixels"][idx],
            soft=split_soft,
            ids=[f"row{i}" for i in idx],
            source=str(path),
        )
    return out


def blended_targets(arrays: dict[str, np.ndarray], ferplus_csv: Path, weight: float) -> np.ndarray:
    """(N, 7) float32 targets: FER2013's one-hot label blended with FER+'s 7-class vote distribution."""
    if not 0.0 <= weight <= 1.0:
        raise DataError(f"ferplus_weight must lie in [0, 1], got {weight}")
    if ferplus_csv.is_dir():
        ferplus_csv = ferplus_csv / "fer2013new.csv"
    usage, names, votes = parse_votes(ferplus_csv)
    if len(usage) != len(arrays["usage"]) or (usage != arrays["usage"]).any():
        raise DataError(
            f"{ferplus_csv}: rows do not line up with the FER2013 csv ({len(usage):,} vs "
            f"{len(arrays['usage']):,} rows, or a different Usage order); the files must be "
            f"the same release"
        )
    ferplus_label, dist = soft_labels(votes, 7)
    usable = (ferplus_label >= 0) & np.array([bool(n) for n in names])
    onehot = np.eye(7, dtype=np.float32)[arrays["emotion"]]
    blend = (1.0 - weight) * onehot + weight * dist
    return np.where(usable[:, None], blend, onehot).astype(np.float32)
