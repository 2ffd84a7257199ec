"""RAF-DB basic (Li et al. 2017) in its official release layout.

``root`` holds ``EmoLabel/list_patition_label.txt`` (lines ``train_00001.jpg 5``; ids 1-7 =
surprise, fear, disgust, happiness, sadness, anger, neutral) and the images under
``Image/aligned/<name>_aligned.jpg`` (the 100x100 aligned faces, the default) or
``Image/original/<name>.jpg`` (``aligned=False``; whole photos, no crop box is published with
the basic list). The label file may also sit directly in ``root``, or ``root`` may be the file.
Protocol: train / test from the name prefix; validation is carved from train by ``build_splits``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...labels import EMOTIONS7, RAFDB_TO_CANON
from ...utils.errors import DataError
from ..dataset import Split
from ._common import read_text_lines, require_files

LABEL_FILE = "list_patition_label.txt"  # sic: the official spelling


def find_label_file(root: str | Path) -> Path:
    p = Path(root)
    if p.is_file():
        return p
    for cand in (p / "EmoLabel" / LABEL_FILE, p / LABEL_FILE):
        if cand.is_file():
            return cand
    raise DataError(f"{p}: no EmoLabel/{LABEL_FILE} (the RAF-DB basic label list) in this folder")


def parse_labels(path: str | Path) -> dict[str, list[tuple[str, int]]]:
    """``{'train': [(name, canonical index), ...], 'test': [...]}`` from the official list."""
    path = Path(path)
    out: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for n, line in enumerate(read_text_lines(path), start=1):
        parts = line.split()
        try:
            name, native = parts[0], int(parts[1])
        except (IndexError, ValueError):
            raise DataError(f"{path}: line {n}: expected '<name>.jpg <label 1-7>', got {line!r}") from None
        if native not in RAFDB_TO_CANON:
            raise DataError(f"{path}: line {n}: label {native} is not one of 1-7")
        split = name.split("_", 1)[0]
        if split not in out:
            raise DataError(f"{path}: line {n}: name {name!r} starts with neither train_ nor test_")
        out[split].append((name, RAFDB_TO_CANON[native]))
    if not out["train"] and not out["test"]:
        raise DataError(f"{path}: no labels")
    return out


def image_path(image_root: Path, name: str, aligned: bool) -> Path:
    if aligned:
        return image_root / "aligned" / f"{Path(name).stem}_aligned{Path(name).suffix}"
    return image_root / "original" / name


def read(root: str | Path, aligned: bool = True) -> dict[str, Split]:
    label_file = find_label_file(root)
    base = label_file.parent.parent if label_file.parent.name == "EmoLabel" else label_file.parent
    image_root = base / "Image"
    entries = {k: v for k, v in parse_labels(label_file).items() if v}
    paths = {k: [str(image_path(image_root, name, aligned)) for name, _ in rows] for k, rows in entries.items()}
    require_files([p for ps in paths.values() for p in ps], image_root / ("aligned" if aligned else "original"))
    return {
        k: Split(
            name=k,
            labels=np.array([c for _, c in rows]),
            label_names=EMOTIONS7,
            paths=paths[k],
            ids=[name for name, _ in rows],
            source=str(label_file),
        )
        for k, rows in entries.items()
    }
