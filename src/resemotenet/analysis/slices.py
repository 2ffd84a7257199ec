"""Fairness slices: accuracy and macro-F1 per group of an attribute (age band, skin tone,
glasses, camera, ...) and the gap between the best and the worst group.

Why: one overall accuracy can hide a model that fails a group of people. Attributes come from
a CSV with the header ``image,attribute,value`` where ``image`` is the sample id the reader
gives (``Split.ids``, e.g. ``row123`` for FER2013 or a file's relative path for a folder).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import classification_metrics
from ..utils.errors import DataError

HEADER = ("image", "attribute", "value")


def read_attributes(path: str | Path) -> dict[str, dict[str, str]]:
    """``{attribute: {image_id: value}}``; a malformed file or a contradiction is a ``DataError``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: attributes file not found")
    out: dict[str, dict[str, str]] = defaultdict(dict)
    try:
        with p.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = tuple(h.strip().lower() for h in next(reader, []))
            if header != HEADER:
                raise DataError(f"{p}: header must be {','.join(HEADER)}, got {','.join(header) or 'nothing'}")
            for line, row in enumerate(reader, start=2):
                if not row or not any(c.strip() for c in row):
                    continue
                if len(row) != 3:
                    raise DataError(f"{p}: line {line}: expected 3 fields, got {len(row)}")
                image, attr, value = (c.strip() for c in row)
                old = out[attr].get(image)
                if old is not None and old != value:
                    raise DataError(f"{p}: line {line}: {image!r} has two values for {attr!r} ({old!r}, {value!r})")
                out[attr][image] = value
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{p}: not a readable CSV ({exc})") from exc
    if not out:
        raise DataError(f"{p}: no attribute rows")
    return dict(out)


def slice_metrics(
    probs: np.ndarray,
    y: np.ndarray,
    ids: list[str],
    labels: tuple[str, ...] | list[str],
    attributes: dict[str, dict[str, str]],
    examples: int = 5,
) -> dict[str, Any]:
    """Per attribute: n / accuracy / macro-F1 per value and the best-worst accuracy gap.
    Images named in the attributes but absent from ``ids`` are counted and listed (the first
    ``examples``); that none match at all is an error (wrong id scheme or wrong split)."""
    if len(ids) != len(y):
        raise DataError(f"{len(ids)} ids for {len(y)} samples")
    index = {sid: i for i, sid in enumerate(ids)}
    named = sorted({img for values in attributes.values() for img in values})
    unmatched = [img for img in named if img not in index]
    if len(unmatched) == len(named):
        raise DataError(
            f"none of the {len(named)} images in the attributes file is in this split "
            f"(e.g. {unmatched[:3]}; sample ids look like {ids[:3]})"
        )
    result: dict[str, Any] = {
        "n": len(y),
        "matched": len(named) - len(unmatched),
        "unmatched": {"count": len(unmatched), "examples": unmatched[:examples]},
        "attributes": {},
    }
    for attr, mapping in attributes.items():
        groups: dict[str, list[int]] = defaultdict(list)
        for img, value in mapping.items():
            if img in index:
                groups[value].append(index[img])
        stats = {}
        for value in sorted(groups):
            idx = np.array(groups[value])
            m = classification_metrics(probs[idx], y[idx], labels)
            stats[value] = {"n": len(idx), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
        result["attributes"][attr] = {"groups": stats, **_gap(stats)}
    return result


def _gap(stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if not stats:
        return {"gap": None, "best": None, "worst": None}
    best = max(stats, key=lambda v: stats[v]["accuracy"])
    worst = min(stats, key=lambda v: stats[v]["accuracy"])
    f1 = [s["macro_f1"] for s in stats.values()]
    return {
        "gap": stats[best]["accuracy"] - stats[worst]["accuracy"],
        "best": best,
        "worst": worst,
        "macro_f1_gap": max(f1) - min(f1),
    }


def format_slices(result: dict[str, Any]) -> str:
    lines = []
    for attr, r in result["attributes"].items():
        lines.append(f"{attr}: accuracy gap {r['gap']:.4f} (best {r['best']}, worst {r['worst']})")
        for value, s in r["groups"].items():
            lines.append(f"  {value:20s} n={s['n']:<6d} accuracy {s['accuracy']:.4f}  macro-F1 {s['macro_f1']:.4f}")
    u = result["unmatched"]
    if u["count"]:
        lines.append(f"{u['count']} image(s) in the attributes file are not in this split, e.g. {u['examples']}")
    return "\n".join(lines)
