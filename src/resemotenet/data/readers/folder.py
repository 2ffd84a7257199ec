"""A team's own images sorted into one folder per class: ``root/<class>/*.jpg``.

Class folder names go through ``labels.canonical_name`` (any case, common synonyms such as
``happiness`` or ``anger``); an unknown name is an error listing the valid ones. If ``root`` has
``train/`` (and optionally ``val/``, ``test/``) subfolders, each is a split laid out the same way;
otherwise everything is ``all`` and ``build_splits`` carves test and validation.
Seven classes unless a ``contempt`` folder exists (then eight); ``num_classes`` overrides
(with 7, contempt folders are left out). Images are read from each class folder itself, not
from nested subfolders; files with other extensions are ignored.

Groups (faces that belong together: one person, one clip) come from ``root/groups.csv``
(header ``file,group``; ``file`` relative to ``root``, e.g. ``happy/0.png`` or
``train/happy/0.png``), or else from ``root/labels.csv`` (``file,label,<group column>``: the
third column unless ``group_column`` names another; its labels must agree with the class
folders). Every image then needs a group and every listed file must be an image of the folder.
Without either file each image is its own group. ``Split.groups`` carries them: carved splits
keep a group in one part, and intervals resample whole groups.
"""

from __future__ import annotations

import csv
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
            raise DataError(f"{d}: holds no images (looked for {', '.join(sorted(IMAGE_EXTS))})")
        out.setdefault(name, []).extend(files)  # 'anger' and 'angry' folders merge
    return out


def read(root: str | Path, num_classes: int | None = None, group_column: str | None = None) -> dict[str, Split]:
    root = Path(root)
    per_split = {k: class_files(d) for k, d in split_folders(root).items()}
    groups = read_groups(root, per_split, group_column)
    if num_classes is None:
        num_classes = 8 if any("contempt" in c for c in per_split.values()) else 7
    names = label_names(num_classes)
    out = {}
    for split, classes in per_split.items():
        files = [(f, names.index(c)) for c, fs in classes.items() if c in names for f in fs]
        if not files:
            raise DataError(f"{root}: the {split} split holds no images of classes {', '.join(names)}")
        files.sort(key=lambda t: t[0])
        ids = [f.relative_to(root).as_posix() for f, _ in files]
        out[split] = Split(
            name=split,
            labels=np.array([c for _, c in files]),
            label_names=names,
            paths=[str(f) for f, _ in files],
            ids=ids,
            source=str(root),
            cacheable=False,  # a team's own faces: decoded in memory, never written to the cache
            groups=np.array([groups.get(i, i) for i in ids], dtype=str),
        )
    return out


def read_groups(
    root: Path, per_split: dict[str, dict[str, list[Path]]], group_column: str | None = None
) -> dict[str, str]:
    """Image id (path relative to ``root``) -> group, from ``groups.csv`` or ``labels.csv``
    (see the module doc); empty when the folder has neither file (each image its own group)."""
    images = {
        f.relative_to(root).as_posix(): c for classes in per_split.values() for c, fs in classes.items() for f in fs
    }
    path = root / "groups.csv"
    if path.is_file():
        rows, column = _csv_rows(path), "group"
        labelled = False
    elif (root / "labels.csv").is_file():
        path = root / "labels.csv"
        rows = _csv_rows(path)
        column = group_column or (list(rows[0])[2] if rows and len(rows[0]) > 2 else None)
        if column is None:
            return {}  # file,label only: no groups given
        labelled = True
    else:
        if group_column:
            raise DataError(f"{root}: group_column {group_column!r} given but there is no groups.csv or labels.csv")
        return {}
    groups = _groups_from_rows(path, rows, column)
    _check_cover(path, groups, images)
    if labelled:
        _check_labels(path, rows, images)
    return groups


def _csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if rows and "file" not in rows[0]:
        raise DataError(f"{path}: no 'file' column (header: {', '.join(k for k in rows[0] if k)})")
    return rows


def _groups_from_rows(path: Path, rows: list[dict[str, str]], column: str) -> dict[str, str]:
    if rows and column not in rows[0]:
        raise DataError(f"{path}: no {column!r} column (header: {', '.join(k for k in rows[0] if k)})")
    groups: dict[str, str] = {}
    for n, row in enumerate(rows, start=2):
        file, group = (row.get("file") or "").strip(), (row.get(column) or "").strip()
        if not file or not group:
            raise DataError(f"{path}: line {n}: empty file or {column}")
        if groups.setdefault(file, group) != group:
            raise DataError(f"{path}: line {n}: {file} is listed twice with different groups")
    return groups


def _first(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _check_cover(path: Path, groups: dict[str, str], images: dict[str, str]) -> None:
    """Every listed file is an image of the folder and every image has a group."""
    unknown = sorted(set(groups) - set(images))
    if unknown:
        raise DataError(
            f"{path}: {len(unknown):,} of {len(groups):,} listed files are not images of this folder "
            f"(missing or outside its class folders): {_first(unknown)}"
        )
    orphans = sorted(set(images) - set(groups))
    if orphans:
        raise DataError(f"{path}: {len(orphans):,} of {len(images):,} images have no group: {_first(orphans)}")


def _check_labels(path: Path, rows: list[dict[str, str]], images: dict[str, str]) -> None:
    """A labels.csv whose label disagrees with the class folder means one of them is wrong."""
    if not rows or "label" not in rows[0]:
        return
    wrong = []
    for row in rows:
        try:
            same = canonical_name(row["label"].strip()) == images[row["file"].strip()]
        except DataError:
            same = False
        if not same:
            wrong.append(row["file"].strip())
    if wrong:
        raise DataError(f"{path}: {len(wrong):,} labels disagree with their class folder: {_first(sorted(wrong))}")
