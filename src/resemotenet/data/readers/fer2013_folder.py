"""FER2013 in the popular image-folder layout (as re-published on Kaggle and elsewhere).

``root/train/<class>/*.jpg`` and ``root/test/<class>/{PublicTest,PrivateTest}_*.jpg``: the
file-name prefix keeps the official protocol (val = PublicTest, test = PrivateTest). When no
file in ``test/`` carries these prefixes the whole folder is the test split and validation is
carved from train. Class folder names go through ``labels.canonical_name``. The 48x48 grayscale
images are decoded straight into ``images`` (uint8 N, 48, 48), cached by the files' names,
sizes and modification times.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ...labels import EMOTIONS7
from ...utils.errors import DataError
from ...utils.io import cache_arrays, cache_dir, load_cached
from ..dataset import Split
from .folder import class_files

SIDE = 48
PREFIXES = {"PublicTest_": "val", "PrivateTest_": "test"}


def _labelled(folder: Path) -> list[tuple[Path, int]]:
    files = []
    for name, fs in class_files(folder).items():
        if name not in EMOTIONS7:
            raise DataError(f"{folder}: FER2013 has no {name!r} class; valid: {', '.join(EMOTIONS7)}")
        files.extend((f, EMOTIONS7.index(name)) for f in fs)
    return sorted(files)


def _test_parts(files: list[tuple[Path, int]]) -> dict[str, list[tuple[Path, int]]]:
    """Split ``test/`` by file-name prefix (all-or-nothing, so no file lands in a split by accident)."""
    part = [next((s for p, s in PREFIXES.items() if f.name.startswith(p)), None) for f, _ in files]
    if all(p is None for p in part):
        return {"test": files}
    if None in part:
        bad = files[part.index(None)][0]
        raise DataError(
            f"{bad}: test/ mixes PublicTest_/PrivateTest_ files with others; cannot "
            f"tell which split this file belongs to"
        )
    return {s: [t for t, p in zip(files, part) if p == s] for s in ("val", "test")}


def _decode(path: Path) -> np.ndarray:
    import cv2

    from ..transforms import resize_face

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    except cv2.error:  # OpenCV's own size guard
        img = None
    if img is None:
        raise DataError(f"{path}: not a readable image (empty, unknown format or truncated)")
    return resize_face(img, SIDE)


def _images(root: Path, files: list[Path]) -> np.ndarray:
    """Decode ``files`` once; later loads of the unchanged folder read the cache."""
    stats = [(f.relative_to(root).as_posix(), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    key = hashlib.sha256(json.dumps([str(root.resolve()), stats]).encode()).hexdigest()[:20]
    cached = cache_dir() / f"fer2013-folder-{key}.npy"
    if (images := load_cached(cached)) is not None:  # a damaged cache file is dropped and rebuilt
        return images
    images = np.stack([_decode(f) for f in files]) if files else np.zeros((0, SIDE, SIDE), np.uint8)
    cache_arrays(cached, array=images)
    return images


def read(root: str | Path) -> dict[str, Split]:
    root = Path(root)
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise DataError(f"{root}: expected train/<class>/*.jpg and test/<class>/*.jpg")
    parts = {"train": _labelled(root / "train"), **_test_parts(_labelled(root / "test"))}
    out = {}
    for split, files in parts.items():
        if not files:
            raise DataError(f"{root}: the {split} split holds no images")
        paths = [f for f, _ in files]
        out[split] = Split(
            name=split,
            labels=np.array([c for _, c in files]),
            label_names=EMOTIONS7,
            images=_images(root, paths),
            ids=[f.relative_to(root).as_posix() for f in paths],
            source=str(root),
        )
    return out
