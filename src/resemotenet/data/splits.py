"""Grouped, stratified splits: faces that belong together (one person, one clip, one camera)
always land in the same part, so a test part never holds a face whose twin was trained on.

``group_split`` is what ``dataset.build_splits`` uses to carve validation and test parts from a
dataset whose faces carry groups; a site's fine-tune loop uses it the same way to hold out whole
people. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..utils.errors import ConfigError, DataError


def group_split(
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[str] | np.ndarray,
    fractions: Sequence[float],
    seed: int = 0,
) -> tuple[np.ndarray, ...]:
    """Sorted face indices of each part, one array per entry of ``fractions`` (which sum to 1).

    No group is split between parts. Within that rule the parts are stratified as well as whole
    groups allow: groups are placed largest first (equal sizes in a seeded random order), each
    into the part where it most reduces the squared shortfall of every class against that part's
    share, weighted by 1 / class size so rare classes count as much as common ones. Every part
    with a fraction above 0 gets at least one group. The same inputs and ``seed`` give the same
    parts on every machine. With one face per group this is an ordinary stratified split.
    """
    labels = np.asarray(labels, dtype=np.int64)
    groups = np.asarray(groups)
    fr = _check_fractions(fractions)
    if labels.ndim != 1 or groups.shape != labels.shape:
        raise DataError(f"{len(groups)} groups for {len(labels)} labels; give one group per face")
    names, gid = np.unique(groups, return_inverse=True)
    needed = int((fr > 0).sum())
    if len(names) < needed:
        raise DataError(f"{len(names)} group(s) cannot fill {needed} parts: every part needs at least one whole group")
    if labels.size and labels.min() < 0:
        raise DataError("labels must be class indices >= 0")
    counts = np.zeros((len(names), int(labels.max()) + 1))
    np.add.at(counts, (gid, labels), 1)
    part = _assign(counts, fr, np.random.default_rng(seed))
    _fill_empty(part, counts.sum(1), fr)
    face_part = part[gid]
    return tuple(np.flatnonzero(face_part == p) for p in range(len(fr)))


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or len(fr) < 2 or np.any(fr < 0) or abs(fr.sum() - 1.0) > 1e-6:
        raise ConfigError(f"fractions must be two or more shares >= 0 that sum to 1, got {list(fractions)}")
    return fr


def _assign(counts: np.ndarray, fr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Part of every group (greedy, largest groups first)."""
    n_parts = len(fr)
    sizes = counts.sum(1)
    order = rng.permutation(len(counts))
    order = order[np.argsort(-sizes[order], kind="stable")]
    target = fr[:, None] * counts.sum(0)[None, :]  # (parts, classes): each part's share
    weight = 1.0 / np.maximum(counts.sum(0), 1.0)
    filled = np.zeros_like(target)
    closed = fr == 0
    part = np.empty(len(counts), dtype=np.int64)
    index = np.arange(n_parts)
    for g in order:
        c = counts[g]
        # growth of sum_c w_c (filled - target)^2 if group g joins each part
        cost = ((2.0 * (filled - target) + c) * c * weight).sum(1)
        cost[closed] = np.inf
        shortfall = filled.sum(1) - target.sum(1)  # ties go to the emptiest part, then the first
        p = int(np.lexsort((index, shortfall, np.round(cost, 9)))[0])
        part[g] = p
        filled[p] += c
    return part


def _fill_empty(part: np.ndarray, sizes: np.ndarray, fr: np.ndarray) -> None:
    """Give every open part that ended empty the smallest group of the part most over its share
    among those holding two groups or more (there is one: there are at least as many groups as
    open parts)."""
    for p in np.flatnonzero(fr > 0):
        if np.any(part == p):
            continue
        n_groups = np.bincount(part, minlength=len(fr))
        surplus = np.bincount(part, weights=sizes, minlength=len(fr)) - fr * sizes.sum()
        donor = int(np.argmax(np.where(n_groups > 1, surplus, -np.inf)))
        members = np.flatnonzero(part == donor)
        part[members[np.argmin(sizes[members])]] = p


def shared_groups(groups: Sequence[str] | np.ndarray, a: np.ndarray, b: np.ndarray) -> list[str]:
    """Groups with faces in both index sets ``a`` and ``b`` (sorted): empty when the parts are
    cleanly separated."""
    groups = np.asarray(groups)
    return sorted(set(groups[np.asarray(a, dtype=np.int64)]) & set(groups[np.asarray(b, dtype=np.int64)]))
