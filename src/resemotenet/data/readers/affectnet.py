"""AffectNet (Mollahosseini et al. 2017), in either of its two release layouts.

(a) The 2017 release: ``Manually_Annotated_file_lists/{training,validation}.csv`` with columns
``subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks, expression,
valence, arousal`` (some copies of the lists lack the header row; both are accepted) and the
photos under ``Manually_Annotated_Images/``; each face is cropped by its box.
(b) The later release of cropped faces: ``train_set`` / ``val_set``, each with
``images/<id>.jpg`` and ``annotations/<id>_exp.npy`` holding the expression id.

Expression ids: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger, 7 contempt,
8 none, 9 uncertain, 10 no-face. 8-10 are always dropped; contempt too unless ``num_classes=8``.
Protocol: train = training set, test = the official validation set (the test set was never
released); validation is carved from train by ``build_splits``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...labels import AFFECTNET_TO_CANON, label_names
from ...utils.errors import DataError
from ..dataset import Split
from ._common import require_files

LISTS, IMAGES = "Manually_Annotated_file_lists", "Manually_Annotated_Images"
COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
LIST_FILES = {"train": "training.csv", "test": "validation.csv"}
SET_DIRS = {"train": "train_set", "test": "val_set"}


def read(root: str | Path, num_classes: int = 7) -> dict[str, Split]:
    names = label_names(num_classes)
    p = Path(root)
    if (p / LISTS).is_dir():
        return {k: _read_list(p / LISTS / f, p / IMAGES, k, names) for k, f in LIST_FILES.items()}
    if (p / SET_DIRS["train"]).is_dir():
        return {k: _read_set(p / d, k, names) for k, d in SET_DIRS.items()}
    raise DataError(
        f"{p}: neither {LISTS}/ (AffectNet 2017 layout) nor train_set/ and val_set/ "
        f"(cropped-face layout) in this folder"
    )


def _keep(native: int, names: tuple[str, ...]) -> int | None:
    """Canonical index for an AffectNet id, or None when the class is dropped."""
    canon = AFFECTNET_TO_CANON.get(native)
    return canon if canon is not None and canon < len(names) else None


def _rows(path: Path) -> tuple[list[list[str]], dict[str, int]]:
    """Data rows and column positions; the header row is optional (detected by its first cell)."""
    if not path.is_file():
        raise DataError(f"{path}: AffectNet list not found")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = [r for r in csv.reader(f) if r]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if rows and rows[0][0].strip() == COLUMNS[0]:
        header = [h.strip() for h in rows[0]]
        missing = [c for c in COLUMNS[:7] if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; header is {header}")
        return rows[1:], {c: header.index(c) for c in COLUMNS[:7]}
    return rows, {c: i for i, c in enumerate(COLUMNS)}


def _read_list(path: Path, image_dir: Path, split: str, names: tuple[str, ...]) -> Split:
    rows, col = _rows(path)
    files, boxes, labels = [], [], []
    for n, row in enumerate(rows, start=1):
        try:
            native = int(float(row[col["expression"]]))
            x, y, w, h = (int(float(row[col[c]])) for c in ("face_x", "face_y", "face_width", "face_height"))
            rel = row[col["subDirectory_filePath"]].strip()
        except (IndexError, ValueError):
            raise DataError(f"{path}: data row {n}: malformed ({','.join(row)[:80]!r})") from None
        canon = _keep(native, names)
        if canon is None:
            continue
        if w <= 0 or h <= 0:
            raise DataError(f"{path}: data row {n}: empty face box ({x}, {y}, {w}, {h}) for {rel}")
        files.append(rel)
        boxes.append((x, y, x + w, y + h))
        labels.append(canon)
    if not files:
        raise DataError(f"{path}: no usable rows (expressions 0-{len(names) - 1})")
    paths = [str(image_dir / f) for f in files]
    require_files(paths, image_dir)
    return Split(
        name=split,
        labels=np.array(labels),
        label_names=names,
        paths=paths,
        boxes=np.array(boxes, np.int64),
        ids=files,
        source=str(path),
    )


def _expression(path: Path) -> int:
    """The id in an ``<id>_exp.npy`` (stored as a 0-d string or integer array)."""
    try:
        return int(str(np.load(path, allow_pickle=False).item()).strip())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not an expression annotation ({exc})") from exc


def _read_set(folder: Path, split: str, names: tuple[str, ...]) -> Split:
    img_dir, ann_dir = folder / "images", folder / "annotations"
    if not img_dir.is_dir() or not ann_dir.is_dir():
        raise DataError(f"{folder}: expected images/ and annotations/ subfolders")
    images = sorted(
        (p for p in img_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
        key=lambda p: (len(p.stem), p.stem),
    )  # numeric ids in numeric order
    if not images:
        raise DataError(f"{img_dir}: no images")
    ann = [ann_dir / f"{p.stem}_exp.npy" for p in images]
    require_files([str(a) for a in ann], ann_dir, "annotations")
    paths, ids, labels = [], [], []
    for img, a in zip(images, ann):
        canon = _keep(_expression(a), names)
        if canon is not None:
            paths.append(str(img))
            ids.append(img.stem)
            labels.append(canon)
    if not paths:
        raise DataError(f"{folder}: no images with expressions 0-{len(names) - 1}")
    return Split(name=split, labels=np.array(labels), label_names=names, paths=paths, ids=ids, source=str(folder))
