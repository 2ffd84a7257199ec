"""Leakage audit: exact and near-duplicate images within and across the train / val / test splits.

Why: FER2013 holds about 1,850 redundant rows, some shared between Training and the test
splits; a model that memorised a training face is then "tested" on it. The audit finds
- exact duplicates: identical decoded pixels (a 16-byte BLAKE2 digest per image);
- near duplicates: a 64-bit DCT perceptual hash (pHash) within ``threshold`` bits, confirmed by
  the Pearson correlation of 32 x 32 thumbnails (``min_corr``). Candidate pairs come from
  locality-sensitive bucketing: the 64 bits are dealt into ``threshold + 1`` bands, so by the
  pigeonhole principle any pair within ``threshold`` bits agrees exactly on one band; no
  all-pairs comparison is made.
Everything is vectorised with numpy (35,887 FER2013 images take seconds).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig
from ..data.dataset import Split
from ..imaging import read_image
from ..utils.errors import DataError
from ..utils.io import atomic_write, atomic_write_text

THUMB = 32  # pHash works on a 32 x 32 grayscale thumbnail and keeps its 8 x 8 lowest frequencies
LOW = 8
ORDER = ("train", "val", "test")


@dataclass
class Fingerprints:
    """Per image (all splits concatenated): split code, row within the split, id, label,
    exact digest, 64-bit pHash and the thumbnail used for the pixel check."""

    split: np.ndarray
    row: np.ndarray
    ids: list[str]
    labels: np.ndarray
    digest: np.ndarray
    phash: np.ndarray
    thumbs: np.ndarray
    names: tuple[str, ...]


def _images(split: Split) -> Iterator[np.ndarray]:
    if split.images is not None:
        yield from split.images
        return
    for i, path in enumerate(split.paths or []):
        yield read_image(path, None if split.boxes is None else split.boxes[i])


def _thumb(img: np.ndarray) -> np.ndarray:
    import cv2

    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.shape[2] == 3 else img[..., 0]
    interp = cv2.INTER_AREA if min(img.shape[:2]) > THUMB else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(img), (THUMB, THUMB), interpolation=interp)


def fingerprint(splits: dict[str, Split]) -> Fingerprints:
    """Digest, thumbnail and pHash of every image of every split (each image decoded once)."""
    names = tuple(n for n in ORDER if n in splits) + tuple(n for n in splits if n not in ORDER)
    codes, rows, ids, labels, digests, thumbs = [], [], [], [], [], []
    for code, name in enumerate(names):
        s = splits[name]
        for img in _images(s):
            img = np.ascontiguousarray(img)
            h = hashlib.blake2b(img.tobytes(), digest_size=16)
            h.update(repr(img.shape).encode())
            digests.append(h.digest())
            thumbs.append(_thumb(img))
        codes.append(np.full(len(s), code, np.int8))
        rows.append(np.arange(len(s)))
        ids += list(s.ids)
        labels.append(s.labels)
    thumb_arr = np.stack(thumbs) if thumbs else np.zeros((0, THUMB, THUMB), np.uint8)
    return Fingerprints(
        np.concatenate(codes),
        np.concatenate(rows),
        ids,
        np.concatenate(labels),
        np.array(digests, dtype="S16"),
        phash(thumb_arr),
        thumb_arr,
        names,
    )


def _dct_matrix(n: int) -> np.ndarray:
    k, x = np.arange(n)[:, None], np.arange(n)[None, :]
    d = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * x + 1) * k / (2 * n))
    d[0] /= np.sqrt(2.0)
    return d


def phash(thumbs: np.ndarray) -> np.ndarray:
    """64-bit DCT perceptual hashes (uint64) of (N, 32, 32) grayscale thumbnails, all at once:
    bit = low-frequency coefficient above the median of the 63 non-DC ones."""
    d = _dct_matrix(THUMB)[:LOW].astype(np.float32)  # (8, 32)
    low = (d @ thumbs.astype(np.float32) @ d.T).reshape(len(thumbs), LOW * LOW)  # (N, 64)
    med = np.median(low[:, 1:], axis=1, keepdims=True)
    bits = np.packbits(low > med, axis=1)  # (N, 8) bytes, most significant first
    return bits.view(">u8").ravel().astype(np.uint64)


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per uint64 (numpy >= 2 has it built in)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    table = np.array([bin(i).count("1") for i in range(256)], np.int64)
    return table[np.ascontiguousarray(x).view(np.uint8).reshape(-1, 8)].sum(1)


def _band_keys(h: np.ndarray, bands: int) -> list[np.ndarray]:
    """Deal bit i to band i % bands (interleaving mixes low and high frequencies in each band)."""
    bits = np.unpackbits(h.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)  # (N, 64)
    keys = []
    for b in range(bands):
        sel = bits[:, b::bands].astype(np.uint64)
        keys.append((sel << np.arange(sel.shape[1], dtype=np.uint64)).sum(1))
    return keys


def near_pairs(h: np.ndarray, threshold: int) -> np.ndarray:
    """Pairs (i < j), shape (P, 2), whose hashes differ in at most ``threshold`` bits.

    Candidates share one band exactly; within each bucket every pair is visited once by
    stepping an offset ``d`` along the bucket-sorted order, filtering as it goes so memory
    stays linear in N.
    """
    n = len(h)
    found: list[np.ndarray] = []
    for key in _band_keys(h, min(threshold + 1, 64)):
        order = np.argsort(key, kind="stable")
        k = key[order]
        start = np.r_[0, np.flatnonzero(k[1:] != k[:-1]) + 1]
        length = np.diff(np.r_[start, n])
        run_end = np.repeat(start + length, length)  # one past the last member of each run
        active = np.flatnonzero(run_end - np.arange(n) > 1)
        d = 1
        while active.size:
            a, b = order[active], order[active + d]
            close = popcount(h[a] ^ h[b]) <= threshold
            found.append(np.stack([np.minimum(a, b), np.maximum(a, b)], 1)[close])
            d += 1
            active = active[run_end[active] - active > d]
    if not found:
        return np.zeros((0, 2), np.int64)
    allp = np.concatenate(found).astype(np.int64)
    code = np.unique(allp[:, 0] * n + allp[:, 1])  # one entry per pair, whichever band found it
    return np.stack([code // n, code % n], 1)


def correlation(thumbs: np.ndarray, pairs: np.ndarray, chunk: int = 20_000) -> np.ndarray:
    """Pearson correlation of the thumbnails of each pair (flat images correlate 0)."""
    z = thumbs.reshape(len(thumbs), -1).astype(np.float32)
    z -= z.mean(1, keepdims=True)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-6)
    parts = np.array_split(pairs, max(1, -(-len(pairs) // chunk)))
    out = [np.einsum("ij,ij->i", z[p[:, 0]], z[p[:, 1]]) for p in parts]
    return np.concatenate(out) if len(pairs) else np.zeros(0, np.float32)


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components (label = smallest member) by min-label propagation."""
    lab = np.arange(n)
    if len(pairs) == 0:
        return lab
    a, b = pairs[:, 0], pairs[:, 1]
    while True:
        m = np.minimum(lab[a], lab[b])
        new = lab.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]
        if np.array_equal(new, lab):
            return lab
        lab = new


def _pair_counts(counts_a: np.ndarray, counts_b: np.ndarray, names: tuple[str, ...], same: bool) -> dict[str, int]:
    """Row pairs per split pair, from per-group (or per matched pair) split counts."""
    m = counts_a.T @ counts_b
    out = {}
    for i, a in enumerate(names):
        for j in range(i, len(names)):
            if i == j:
                v = (m[i, i] - counts_a[:, i].sum()) // 2 if same else m[i, i]
            else:
                v = m[i, j] + (0 if same else m[j, i])
            out[f"{a}/{names[j]}"] = int(v)
    return out


def _split_counts(group: np.ndarray, split: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((group.max() + 1 if len(group) else 0, k), np.int64)
    np.add.at(out, (group, split), 1)
    return out


def _leaks(cluster: np.ndarray, fp: Fingerprints) -> dict[str, dict[str, int]]:
    """Rows of split A whose image (or a near copy) also appears in split B."""
    k = len(fp.names)
    cnt = _split_counts(cluster, fp.split.astype(np.int64), k)
    out = {}
    for i, a in enumerate(fp.names):
        mine = fp.split == i
        out[a] = {b: int((cnt[cluster[mine], j] > 0).sum()) for j, b in enumerate(fp.names) if j != i}
    return out


def audit_splits(
    splits: dict[str, Split], threshold: int = 6, min_corr: float = 0.95, examples: int = 8
) -> dict[str, Any]:
    """Audit ``splits`` (as ``build_splits`` returns them) and return a JSON-ready report.

    Private keys: ``_exclude_ids`` (training rows that also appear, exactly or nearly, in
    another split: the de-duplication list) and ``_examples`` (pairs as ``(split, row)``).
    """
    t0 = time.perf_counter()
    fp = fingerprint(splits)
    n, k = len(fp.ids), len(fp.names)
    _, first, exact = np.unique(fp.digest, return_index=True, return_inverse=True)
    exact = exact.ravel()  # exact-duplicate group of every row
    reps = np.sort(first)  # one representative row per distinct image
    cnt = _split_counts(exact, fp.split.astype(np.int64), k)  # (groups, splits)
    cand = near_pairs(fp.phash[reps], threshold)
    corr = correlation(fp.thumbs[reps], cand)
    keep = corr >= min_corr
    near, near_corr = reps[cand[keep]], corr[keep]  # row pairs of distinct images
    g_a, g_b = exact[near[:, 0]], exact[near[:, 1]]
    cluster = _components(len(first), np.stack([g_a, g_b], 1))[exact]  # exact + near
    labels_per_group = _split_counts(exact, fp.labels, int(fp.labels.max()) + 1 if n else 1)
    dup_groups = np.flatnonzero(cnt.sum(1) > 1)
    exclude = _exclusions(fp, cluster)
    report = {
        "n": n,
        "splits": {name: int((fp.split == i).sum()) for i, name in enumerate(fp.names)},
        "threshold": threshold,
        "min_corr": min_corr,
        "exact": {
            "redundant_rows": int(n - len(first)),
            "groups": len(dup_groups),
            "rows_in_groups": int(cnt[dup_groups].sum()),
            "label_conflicts": int(((labels_per_group > 0).sum(1) > 1).sum()),
            "pairs": _pair_counts(cnt, cnt, fp.names, same=True),
            "leaks": _leaks(exact, fp),
        },
        "near": {
            "candidates_checked": len(cand),
            "pairs_distinct_images": len(near),
            "pairs": _pair_counts(cnt[g_a], cnt[g_b], fp.names, same=False),
            "redundant_rows_with_exact": int(n - len(np.unique(cluster))),
        },
        "leaks": _leaks(cluster, fp),
        "exclude_train": len(exclude),
    }
    ex_exact = [
        _example(fp, _pair_of(fp, np.flatnonzero(exact == g))) for g in _prefer_cross(dup_groups, cnt)[:examples]
    ]
    ham = popcount(fp.phash[near[:, 0]] ^ fp.phash[near[:, 1]])
    cross = fp.split[near[:, 0]] != fp.split[near[:, 1]]
    ex_near = [
        _example(fp, near[i], hamming=int(ham[i]), corr=round(float(near_corr[i]), 4))
        for i in np.argsort(~cross, kind="stable")[:examples]
    ]
    report["exact"]["examples"] = [e["ids"] for e in ex_exact]
    report["near"]["examples"] = [{k: v for k, v in e.items() if k != "where"} for e in ex_near]
    report["seconds"] = round(time.perf_counter() - t0, 2)
    report["_exclude_ids"] = exclude
    report["_examples"] = {"exact": [e["where"] for e in ex_exact], "near": [e["where"] for e in ex_near]}
    return report


def _exclusions(fp: Fingerprints, cluster: np.ndarray) -> list[str]:
    """Ids of training rows whose image (or a near copy) appears in any other split."""
    if "train" not in fp.names or not len(cluster):
        return []
    train = fp.names.index("train")
    elsewhere = np.zeros(cluster.max() + 1, bool)
    elsewhere[cluster[fp.split != train]] = True
    return [fp.ids[i] for i in np.flatnonzero((fp.split == train) & elsewhere[cluster])]


def _prefer_cross(groups: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Duplicate groups that span splits first (those are the leaks worth looking at)."""
    spans = (cnt[groups] > 0).sum(1)
    return groups[np.argsort(-spans, kind="stable")]


def _pair_of(fp: Fingerprints, members: np.ndarray) -> np.ndarray:
    """Two rows of a duplicate group, from two different splits when the group spans them."""
    other = members[fp.split[members] != fp.split[members[0]]]
    return np.array([members[0], other[0] if len(other) else members[1]])


def _example(fp: Fingerprints, rows: np.ndarray, **extra: Any) -> dict[str, Any]:
    where = [(fp.names[fp.split[r]], int(fp.row[r])) for r in rows]
    return {"ids": [f"{s}:{fp.ids[r]}" for (s, _), r in zip(where, rows)], "where": where, **extra}


def example_strip(splits: dict[str, Split], pairs: list[list[tuple[str, int]]], side: int = 96) -> np.ndarray:
    """One uint8 RGB image: each pair side by side, one pair per row, with a caption bar."""
    import cv2

    rows = []
    for pair in pairs:
        tiles = []
        for name, r in pair:
            s = splits[name]
            img = s.images[r] if s.images is not None else read_image(s.paths[r])
            img = img if img.ndim == 3 else np.repeat(img[..., None], 3, 2)
            tile = cv2.resize(np.ascontiguousarray(img), (side, side), interpolation=cv2.INTER_NEAREST)
            bar = np.full((14, side, 3), 255, np.uint8)
            cv2.putText(bar, f"{name} {s.ids[r]}"[:18], (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1)
            tiles += [np.vstack([bar, tile]), np.full((side + 14, 4, 3), 255, np.uint8)]
        rows += [np.hstack(tiles[:-1]), np.full((4, 2 * side + 4, 3), 255, np.uint8)]
    return np.vstack(rows[:-1]) if rows else np.full((side, 2 * side + 4, 3), 255, np.uint8)


def audit(
    data: DataConfig, output: str | Path | None = None, threshold: int = 6, min_corr: float = 0.95, examples: int = 0
) -> dict[str, Any]:
    """Audit a dataset's train / val / test splits and write, under ``output``:
    ``audit.json`` (the report), ``dedup.json`` (``{"exclude_train": [...]}``, the file
    ``resemotenet train --exclude-file`` reads) and, with ``examples`` > 0, image strips of
    example pairs (``audit_exact.png``, ``audit_near.png``)."""
    import json

    if not 0 <= threshold <= 32:
        raise DataError(f"threshold must be between 0 and 32 bits, got {threshold}")
    data = replace(data, exclude_file=None)  # audit what the splits really hold
    from ..data import load_splits

    splits = load_splits(data)
    report = audit_splits(splits, threshold, min_corr, examples=max(examples, 8))
    report = {"dataset": data.name, "source": str(data.root), **report}
    exclude, pairs = report.pop("_exclude_ids"), report.pop("_examples")
    if output is None:
        return report
    out = Path(output)
    dedup = {
        "exclude_train": exclude,
        "dataset": data.name,
        "source": str(data.root),
        "reason": "training rows whose image (exact or near duplicate) is also in val or test",
        "threshold": threshold,
        "min_corr": min_corr,
    }
    atomic_write_text(out / "dedup.json", json.dumps(dedup))
    report["files"] = {"dedup": str(out / "dedup.json")}
    if examples > 0:
        for kind in ("exact", "near"):
            if pairs[kind]:
                path = out / f"audit_{kind}.png"
                _write_png(path, example_strip(splits, pairs[kind][:examples]))
                report["files"][f"examples_{kind}"] = str(path)
    atomic_write_text(out / "audit.json", json.dumps(report, indent=2))
    return report


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(f"{path}: could not encode the example strip")
    atomic_write(path, lambda p: p.write_bytes(buf.tobytes()))
