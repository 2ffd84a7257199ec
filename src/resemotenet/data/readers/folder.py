"""A team's own images sorted into one folder per class: ``root/<class>/*.jpg``.

Class folder names go through ``labels.canonical_name`` (any case, common synonyms such as
``happiness`` or ``anger``); an unknown name is an error listing the valid ones. If ``root`` has
``train/`` (and optionally ``val/``, ``test/``) subfolders, each is a split laid out the same way;
otherwise everything is ``all`` and ``build_splits`` carves test and validation.
Seven classes unless a ``contempt`` folder exists (then eight); ``num_classes`` overrides
(with 7, contempt folders are left out). Images are read from each class folder itself, not
from nested subfolders; files with other extensions are ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...labels import canonical_name, label_names
from ...utils.errors import DataError
from ..dataset import Split
from ._common import IMAGE_EXTS, is_image, subdirs

SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def split_folders(root: Path) -> dict[str, Path]:
    """Protocol split name -> folder: the train/val/test subfolders, or ``{'all': root}``."""
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    found = {SPLIT_DIRS[d.name.lower()]: d for d in subdirs(root) if d.name.lower() in SPLIT_DIRS}
    if not found:
        return {"all": root}
    others = [d.name for d in subdirs(root) if d.name.lower() not in SPLIT_DIRS]
    if others:
        raise DataError(
            f"{root}: has split folders {sorted(found)} and also {others}; "
            f"put class folders inside train/, val/ or test/"
        )
    if "train" not in found:
        raise DataError(f"{root}: split folders {sorted(found)} but no train/")
    return found


def class_files(folder: Path) -> dict[str, list[Path]]:
    """Canonical class name -> sorted image files, for one split folder."""
    classes = subdirs(folder)
    if not classes:
        raise DataError(f"{folder}: no class subfolders (expected {folder}/<class>/*.jpg)")
    out: dict[str, list[Path]] = {}
    for d in classes:
        try:
            name = canonical_name(d.name)
        except DataError as exc:
            raise DataError(f"{d}: {exc}") from None
        files = sorted(f for f in d.iterdir() if is_image(f))
        if not files:
            raise DataError(f"{d}: holds no images (looked for {', '.join(IMAGE_EXTS)})")
        out.setdefault(name, []).extend(files)  # 'anger' and 'angry' folders merge
    return out


def read(root: str | Path, num_classes: int | None = None) -> dict[str, Split]:
    root = Path(root)
    per_split = {k: class_files(d) for k, d in split_folders(root).items()}
    if num_classes is None:
        num_classes = 8 if any("contempt" in c for c in per_split.values()) else 7
    names = label_names(num_classes)
    out = {}
    for split, classes in per_split.items():
        files = [(f, names.index(c)) for c, fs in classes.items() if c in names for f in fs]
        if not files:
            raise DataError(f"{root}: the {split} split holds no images of classes {', '.join(names)}")
        files.sort(key=lambda t: t[0])
        out[split] = Split(
            name=split,
            labels=np.array([c for _, c in files]),
            label_names=names,
            paths=[str(f) for f, _ in files],
            ids=[f.relative_to(root).as_posix() for f, _ in files],
            source=str(root),
            cacheable=False,  # a team's own faces: decoded in memory, never written to the cache
        )
    return out
