"""ExpW, Expression in-the-Wild (Zhang et al. 2018), in its release layout.

``root`` holds ``label/label.lst`` and the photos under ``image/origin/``. Each label line is
``image_name face_id_in_image face_box_top face_box_left face_box_right face_box_bottom
face_box_cofidence expression_label`` (one line per face; a photo may have several); labels
0-6 = angry, disgust, fear, happy, sad, surprise, neutral. Every face is cropped by its box.
There is no official split: everything is returned as ``all`` and ``build_splits`` carves
test and validation, stratified and seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...labels import EMOTIONS7, EXPW_TO_CANON
from ...utils.errors import DataError
from ..dataset import Split
from ._common import read_text_lines, require_files


def find_label_file(root: str | Path) -> Path:
    p = Path(root)
    if p.is_file():
        return p
    cand = p / "label" / "label.lst"
    if cand.is_file():
        return cand
    raise DataError(f"{p}: no label/label.lst (the ExpW label list) in this folder")


def parse_labels(path: Path) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(image names, face ids, boxes (N, 4) x0,y0,x1,y1, canonical labels) from ``label.lst``."""
    names, ids, boxes, labels = [], [], [], []
    for n, line in enumerate(read_text_lines(path), start=1):
        parts = line.split()
        try:
            name, face = parts[0], parts[1]
            top, left, right, bottom = (int(float(v)) for v in parts[2:6])
            float(parts[6])  # detector confidence: parsed to validate the line, not used
            native = int(parts[7])
        except (IndexError, ValueError):
            raise DataError(
                f"{path}: line {n}: expected 'image face_id top left right bottom confidence label', got {line!r}"
            ) from None
        if native not in EXPW_TO_CANON:
            raise DataError(f"{path}: line {n}: label {native} is not one of 0-6")
        if right <= left or bottom <= top:
            raise DataError(
                f"{path}: line {n}: empty face box (top {top}, left {left}, right {right}, bottom {bottom})"
            )
        names.append(name)
        ids.append(f"{name}#{face}")
        boxes.append((left, top, right, bottom))
        labels.append(EXPW_TO_CANON[native])
    if not names:
        raise DataError(f"{path}: no labels")
    return names, ids, np.array(boxes, np.int64), np.array(labels, np.int64)


def read(root: str | Path) -> dict[str, Split]:
    label_file = find_label_file(root)
    image_dir = label_file.parent.parent / "image" / "origin"
    names, ids, boxes, labels = parse_labels(label_file)
    paths = [str(image_dir / name) for name in names]
    require_files(list(dict.fromkeys(paths)), image_dir)  # a photo with several faces counts once
    return {
        "all": Split(
            name="all", labels=labels, label_names=EMOTIONS7, paths=paths, boxes=boxes, ids=ids, source=str(label_file)
        )
    }
