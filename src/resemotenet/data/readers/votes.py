"""FER+ crowd votes (Barsoum et al. 2016): parsing ``fer2013new.csv`` and the published rules
that turn 10 annotators' votes into a label or a distribution. Both FER readers import this
module (``fer2013`` blends the votes into its targets, ``ferplus`` reads them as labels), so
neither imports the other.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...labels import FERPLUS_COLUMNS, FERPLUS_TO_CANON
from ...utils.errors import DataError

USAGES = ("Training", "PublicTest", "PrivateTest")  # FER2013's Usage column, in its code order
HEADER = ("Usage", "Image name") + FERPLUS_COLUMNS


def majority_labels(votes: np.ndarray, num_classes: int = 8) -> np.ndarray:
    """Canonical label per row by the published majority rule; -1 where the row is dropped."""
    v = _denoised(votes, num_classes)
    top = v.argmax(1)
    ok = v.max(1) * 2 > v.sum(1)  # strictly more than half (false when no votes remain)
    return np.where(ok, _column_to_canon(num_classes)[top], -1)


def soft_labels(votes: np.ndarray, num_classes: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(labels, distributions (N, num_classes) in canonical order); label -1 = dropped row."""
    v = _denoised(votes, num_classes)
    col_to_canon = _column_to_canon(num_classes)
    dist = np.zeros((len(v), num_classes), np.float64)
    for col, canon in enumerate(col_to_canon):
        if canon >= 0:
            dist[:, canon] = v[:, col]
    total = dist.sum(1, keepdims=True)
    ok = (total[:, 0] > 0) & (col_to_canon[v.argmax(1)] >= 0)
    dist = np.divide(dist, total, out=np.zeros_like(dist), where=total > 0).astype(np.float32)
    return np.where(ok, dist.argmax(1), -1), dist


def _denoised(votes: np.ndarray, num_classes: int) -> np.ndarray:
    v = np.where(votes > 1, votes, 0)  # a single vote is treated as annotator noise
    if num_classes == 7:
        v[:, FERPLUS_COLUMNS.index("contempt")] = 0
    return v


def _column_to_canon(num_classes: int) -> np.ndarray:
    idx = [FERPLUS_TO_CANON[c] for c in FERPLUS_COLUMNS]
    return np.array([-1 if i is None or i >= num_classes else i for i in idx])


def parse_votes(path: str | Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(usage codes (N,) as in ``USAGES``, image names, votes (N, 10)) of ``fer2013new.csv``."""
    path = Path(path)
    rows = _csv_rows(path)
    header = [h.strip() for h in rows[0]] if rows else []
    missing = [c for c in HEADER if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; header is {header}")
    cols = [header.index(c) for c in HEADER]
    usage, names, votes = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        try:
            use, name, *v = (row[i].strip() for i in cols)
            usage.append(USAGES.index(use))
            votes.append([int(x) for x in v])
        except (IndexError, ValueError):
            raise DataError(f"{path}: line {line}: malformed row {','.join(row)[:80]!r}") from None
        names.append(name)
    if not names:
        raise DataError(f"{path}: no rows")
    return np.array(usage, np.int8), names, np.array(votes, np.int64)


def parse_label_file(path: Path) -> tuple[list[str], np.ndarray]:
    """(names, votes (n, 10)) of one per-split FERPlus file: ``name,"(x, y, w, h)",<10 votes>``."""
    names, votes = [], []
    for line, row in enumerate(_csv_rows(path), start=1):
        try:
            names.append(row[0].strip())
            votes.append([int(x) for x in row[2:12]])
        except (IndexError, ValueError):
            raise DataError(f"{path}: line {line}: expected name,box,10 vote counts") from None
        if len(votes[-1]) != 10:
            raise DataError(f"{path}: line {line}: {len(votes[-1])} vote counts, expected 10")
    if not names:
        raise DataError(f"{path}: no rows")
    return names, np.array(votes, np.int64)


def _csv_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return [r for r in csv.reader(f) if r]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
