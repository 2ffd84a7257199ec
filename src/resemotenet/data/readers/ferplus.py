"""FER+ (Barsoum et al. 2016): ten crowd votes per FER2013 face, joined to FER2013's pixels.

``fer2013new.csv`` (header ``Usage,Image name,neutral,...,contempt,unknown,NF``) has the same
row order as ``fer2013.csv``; rows are joined BY ORDER, never by the number in ``Image name``
(it stops matching the row after row 59). The FER2013 file comes from ``fer2013=PATH`` or, by
default, ``../fer2013/`` beside the FER+ folder. Rows with an empty name (not a face) are dropped.

``votes='microsoft'`` takes the votes from the per-split files of the FERPlus repository
instead (``FER2013{Train,Valid,Test}/label.csv``, or ``FER2013Train.label.csv`` etc.), whose
votes were revised after ``fer2013new.csv``; their names are matched to rows through
``fer2013new.csv``, the last row winning where a name repeats (as the repository's image
generator overwrote it). A folder holding ``FER2013Train/label.csv`` and no
``fer2013new.csv`` is that repository's generated layout: the PNGs beside each label file.

``mode='majority'`` (the published rule): vote counts of 1 are dropped, then the class holding
more than half of the remaining votes wins; no majority, or a majority for unknown / not-a-face,
drops the row. ``mode='soft'``: the same outlier removal, then ``Split.soft`` is the vote
distribution over the kept classes and ``labels`` its argmax; rows whose strongest column is
unknown / not-a-face, or with no kept votes, are dropped. ``num_classes=8`` keeps contempt;
with 7 its votes are discarded before voting.
Protocol: train = Training, val = PublicTest, test = PrivateTest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...labels import FERPLUS_COLUMNS, label_names
from ...utils.errors import ConfigError, DataError
from ..dataset import Split
from . import fer2013 as fer
from ._common import require_files
from .votes import HEADER, USAGES, _csv_rows, majority_labels, parse_label_file, parse_votes, soft_labels  # noqa: F401

SPLIT_FILES = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
LABEL_FILE_PATTERNS = ("{s}/label.csv", "microsoft_labels/{s}.label.csv", "{s}.label.csv")


def find_label_files(folder: Path) -> dict[str, Path] | None:
    for pattern in LABEL_FILE_PATTERNS:
        files = {k: folder / pattern.format(s=s) for k, s in SPLIT_FILES.items()}
        if all(f.is_file() for f in files.values()):
            return files
    return None


def read(
    root: str | Path,
    mode: str = "majority",
    num_classes: int = 8,
    fer2013: str | Path | None = None,
    votes: str = "fer2013new",
) -> dict[str, Split]:
    if mode not in ("majority", "soft"):
        raise ConfigError(f"ferplus mode must be 'majority' or 'soft', got {mode!r}")
    if votes not in ("fer2013new", "microsoft"):
        raise ConfigError(f"ferplus votes must be 'fer2013new' or 'microsoft', got {votes!r}")
    names = label_names(num_classes)
    p = Path(root)
    if p.is_dir() and not (p / "fer2013new.csv").is_file():
        if (p / "FER2013Train" / "label.csv").is_file():
            return _read_image_layout(p, mode, names)
        raise DataError(f"{p}: no fer2013new.csv (nor FER2013Train/label.csv) in this folder")
    csv_path = p / "fer2013new.csv" if p.is_dir() else p
    usage, img_names, vote_counts = parse_votes(csv_path)
    keep = np.array([bool(n) for n in img_names])
    if votes == "microsoft":
        keep, vote_counts = _microsoft_votes(csv_path.parent, usage, img_names)
    pixels = _fer2013_pixels(csv_path, fer2013, usage)
    labels, soft = _labels(vote_counts, mode, len(names))
    out = {}
    for code, usage_name in enumerate(fer.USAGES):
        idx = np.flatnonzero((usage == code) & keep & (labels >= 0))
        split = fer.PROTOCOL[usage_name]
        out[split] = Split(
            name=split,
            labels=labels[idx],
            label_names=names,
            images=pixels[idx],
            soft=None if soft is None else soft[idx],
            ids=[f"row{i}" for i in idx],
            source=str(csv_path),
        )
    return out


def _labels(votes: np.ndarray, mode: str, num_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    if mode == "soft":
        return soft_labels(votes, num_classes)
    return majority_labels(votes, num_classes), None


def _microsoft_votes(folder: Path, usage: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows named in the per-split files and their votes (a repeated name maps to its last row)."""
    files = find_label_files(folder)
    if files is None:
        raise DataError(
            f"{folder}: votes='microsoft' needs FER2013Train/label.csv (or "
            f"microsoft_labels/FER2013Train.label.csv) and the Valid/Test files"
        )
    row_of = {n: i for i, n in enumerate(names) if n}  # later rows overwrite earlier ones
    keep = np.zeros(len(names), bool)
    votes = np.zeros((len(names), len(FERPLUS_COLUMNS)), np.int64)
    for split, path in files.items():
        want = [u for u, s in fer.PROTOCOL.items() if s == split][0]
        file_names, file_votes = parse_label_file(path)
        for name, v in zip(file_names, file_votes):
            i = row_of.get(name)
            if i is None or fer.USAGES[usage[i]] != want:
                raise DataError(f"{path}: {name} is not a {want} row of {folder / 'fer2013new.csv'}")
            keep[i], votes[i] = True, v
    return keep, votes


def _fer2013_pixels(csv_path: Path, fer2013: str | Path | None, usage: np.ndarray) -> np.ndarray:
    """FER2013's pixels for every FER+ row, after checking the two files line up row by row."""
    source = Path(fer2013) if fer2013 is not None else csv_path.parent.parent / "fer2013"
    if fer2013 is None and not source.is_dir():
        raise DataError(
            f"{csv_path}: FER+ holds votes only; pass fer2013=PATH to the FER2013 csv "
            f"(looked for {source}/fer2013.csv.gz)"
        )
    found = fer.find_csv(source)
    if found.is_dir():
        raise DataError(f"{found}: FER+ is joined to the FER2013 csv by row order; an image folder cannot be")
    arrays = fer.load_arrays(found)
    if len(arrays["usage"]) != len(usage):
        raise DataError(
            f"{csv_path}: {len(usage):,} rows but FER2013 ({source}) has "
            f"{len(arrays['usage']):,}; the files must be the same release"
        )
    bad = np.flatnonzero(arrays["usage"] != usage)
    if bad.size:
        raise DataError(
            f"{csv_path}: Usage differs from FER2013 ({source}) at {bad.size:,} rows, "
            f"first at data row {bad[0] + 1}; the rows are not in the same order"
        )
    return arrays["pixels"]


def _read_image_layout(folder: Path, mode: str, names: tuple[str, ...]) -> dict[str, Split]:
    """The FERPlus repository's generated layout: ``FER2013Train/{label.csv, fer*.png}`` etc."""
    files = find_label_files(folder)
    if files is None:
        raise DataError(f"{folder}: FER2013Train/label.csv found but not FER2013Valid/ and FER2013Test/")
    out = {}
    for split, path in files.items():
        img_names, votes = parse_label_file(path)
        labels, soft = _labels(votes, mode, len(names))
        idx = np.flatnonzero(labels >= 0)
        paths = [str(path.parent / img_names[i]) for i in idx]
        require_files(paths, path.parent)
        out[split] = Split(
            name=split,
            labels=labels[idx],
            label_names=names,
            paths=paths,
            soft=None if soft is None else soft[idx],
            ids=[img_names[i] for i in idx],
            source=str(path),
        )
    return out
