"""How sure a measured accuracy is: bootstrap intervals that resample whole groups, paired
comparisons of two models on the same faces, and how many more labelled faces an interval of a
given width needs. numpy only.

Faces of one person or one clip are not independent evidence: a model that gets one frame of a
clip right usually gets its neighbours right too. Resampling faces one by one then gives
intervals that are too narrow; resampling groups (people, clips, movies) with replacement keeps
that dependence. Pass one group per face; with no groups each face is its own group.

Intervals are percentile intervals of ``n_boot`` bootstrap replicates (``level`` 0.95: the 2.5th
and 97.5th percentiles), seeded, so a figure is the same on every run. An accuracy is the ratio
of correct faces to faces in the resample (groups of different sizes weigh by their faces).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from ..utils.errors import ConfigError, DataError

BETTER, SAME, WORSE = "better", "no measurable difference", "worse"
_CHUNK = 4_000_000  # bootstrap weights held at once (replicates x groups), about 32 MB


@dataclass(frozen=True)
class Interval:
    """A point estimate with its ``level`` interval [low, high]; ``n`` faces, ``groups`` groups."""

    estimate: float
    low: float
    high: float
    level: float
    n: int
    groups: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{100 * self.estimate:.1f} % [{100 * self.low:.1f}, {100 * self.high:.1f}]"


def _group_index(groups: Sequence[str] | np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    if groups is None:
        return np.arange(n), n
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise DataError(f"{len(groups)} groups for {n} faces; give one group per face")
    _, gid = np.unique(groups, return_inverse=True)
    return gid.reshape(-1), int(gid.max()) + 1 if n else 0


def _check(n_boot: int, level: float) -> None:
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must be between 0 and 1, got {level}")


def _weights(n_groups: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of bootstrap weights (replicates, groups): how often each group is drawn when
    ``n_groups`` groups are drawn with replacement."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK // max(n_groups, 1))
    for start in range(0, n_boot, per_chunk):
        size = min(per_chunk, n_boot - start)
        yield rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=size).astype(np.float64)


def _ratio_replicates(num: np.ndarray, den: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap replicates (n_boot, k) of sum(w * num) / sum(w * den) for per-group sums
    ``num``, ``den`` shaped (groups, k); NaN where a replicate holds no face of a column."""
    out = []
    for w in _weights(len(num), n_boot, seed):
        bottom = w @ den
        out.append((w @ num) / np.where(bottom > 0, bottom, np.nan))
    return np.concatenate(out)


def _interval(estimate: float, reps: np.ndarray, level: float, n: int, groups: int) -> Interval:
    reps = reps[~np.isnan(reps)]
    alpha = (1 - level) / 2
    low, high = np.percentile(reps, [100 * alpha, 100 * (1 - alpha)]) if reps.size else (np.nan, np.nan)
    return Interval(float(estimate), float(low), float(high), level, n, groups)


def _per_group(values: np.ndarray, gid: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group sums of ``values`` (faces, k) -> (groups, k)."""
    out = np.zeros((n_groups, values.shape[1]))
    np.add.at(out, gid, values)
    return out


def bootstrap_accuracy(
    correct: Sequence[bool] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Accuracy (the share of ``correct`` faces) with its group-bootstrap interval."""
    _check(n_boot, level)
    c = np.asarray(correct, dtype=np.float64).reshape(-1)
    if c.size == 0:
        raise DataError("no faces to score")
    gid, n_groups = _group_index(groups, len(c))
    sums = _per_group(np.stack([c, np.ones_like(c)], 1), gid, n_groups)
    reps = _ratio_replicates(sums[:, :1], sums[:, 1:], n_boot, seed)[:, 0]
    return _interval(c.mean(), reps, level, len(c), n_groups)


def bootstrap_recall(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[int, Interval]:
    """Recall of every class present in ``y_true`` (class index -> interval), all classes from the
    same resamples. A replicate that draws no face of a class is left out of that class's
    interval (the recall is undefined there). ``n`` and ``groups`` count that class's faces and
    the groups holding them."""
    _check(n_boot, level)
    t, p = np.asarray(y_true, dtype=np.int64).reshape(-1), np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if t.shape != p.shape or t.size == 0:
        raise DataError(f"{len(t)} true labels and {len(p)} predictions; give one of each per face")
    gid, n_groups = _group_index(groups, len(t))
    classes = np.unique(t)
    member = (t[:, None] == classes[None, :]).astype(np.float64)  # (faces, classes)
    hits = member * (p == t)[:, None]
    g_hits, g_members = _per_group(hits, gid, n_groups), _per_group(member, gid, n_groups)
    reps = _ratio_replicates(g_hits, g_members, n_boot, seed)
    out = {}
    for j, c in enumerate(classes):
        n_c = int(member[:, j].sum())
        estimate = hits[:, j].sum() / n_c
        out[int(c)] = _interval(estimate, reps[:, j], level, n_c, int((g_members[:, j] > 0).sum()))
    return out


def paired_difference(
    correct_a: Sequence[bool] | np.ndarray,
    correct_b: Sequence[bool] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Accuracy of model A minus accuracy of model B on the same faces (``correct_a[i]`` and
    ``correct_b[i]`` are about face i), with its interval: both models are scored on the same
    resampled groups, so what the faces have in common cancels and the interval is far narrower
    than two separate intervals suggest."""
    _check(n_boot, level)
    a = np.asarray(correct_a, dtype=np.float64).reshape(-1)
    b = np.asarray(correct_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape or a.size == 0:
        raise DataError(f"{len(a)} and {len(b)} results: compare two models on the same faces")
    gid, n_groups = _group_index(groups, len(a))
    sums = _per_group(np.stack([a - b, np.ones_like(a)], 1), gid, n_groups)
    reps = _ratio_replicates(sums[:, :1], sums[:, 1:], n_boot, seed)[:, 0]
    return _interval(a.mean() - b.mean(), reps, level, len(a), n_groups)


def verdict(difference: Interval, margin: float = 0.0) -> str:
    """'better' when the whole interval of A - B lies above ``margin``, 'worse' when it lies below
    ``-margin``, else 'no measurable difference' (the data cannot tell the models apart; it does
    not show they are equal). ``margin``: the smallest difference that matters, in accuracy units."""
    if margin < 0:
        raise ConfigError(f"margin must be >= 0, got {margin}")
    if difference.low > margin:
        return BETTER
    if difference.high < -margin:
        return WORSE
    return SAME


def faces_needed(half_width: float, accuracy: float = 0.5, level: float = 0.95, design_effect: float = 1.0) -> int:
    """Labelled faces for an accuracy interval of ``half_width`` (e.g. 0.03 for +-3 points).

    Normal approximation to the binomial: n = z^2 p (1 - p) / h^2, with p = ``accuracy`` (0.5,
    the default, is the worst case). It assumes independent faces; ``design_effect`` (> 1 when
    faces come in groups: the group-bootstrap variance over the independent-face variance)
    scales n up. Close to 0 or 1 accuracy, and for small n, the approximation is rough."""
    _check(1, level)
    if not 0 < half_width < 1 or not 0 <= accuracy <= 1 or design_effect <= 0:
        raise ConfigError("half_width must be in (0, 1), accuracy in [0, 1] and design_effect > 0")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = min(max(accuracy, 1e-6), 1 - 1e-6)
    return math.ceil(design_effect * z * z * p * (1 - p) / half_width**2)


def more_needed(measured: Interval, half_width: float, unit: str = "faces") -> int:
    """How many more faces (``unit='faces'``) or groups (``unit='groups'``) would shrink the
    ``measured`` interval to ``half_width``; 0 when it is already that narrow.

    Normal approximation: a half-width shrinks as 1 / sqrt(n), so n_needed = n (h_now / h)^2.
    Scaling the measured interval carries over its design effect (how much the faces of a group
    resemble each other), provided the new faces come in groups like the old ones. Works for an
    accuracy and for a paired difference alike."""
    if half_width <= 0:
        raise ConfigError(f"half_width must be > 0, got {half_width}")
    if unit not in ("faces", "groups"):
        raise ConfigError(f"unit must be 'faces' or 'groups', got {unit!r}")
    n = measured.n if unit == "faces" else measured.groups
    now = measured.half_width
    if not np.isfinite(now) or now <= half_width:
        return 0
    return max(0, math.ceil(n * (now / half_width) ** 2) - n)


def design_effect(measured: Interval) -> float:
    """The measured interval's variance over an independent-face binomial interval's (from its own
    estimate and face count): about 1 when groups do not matter, larger when faces of a group
    agree. Normal approximation; feed it to ``faces_needed``."""
    z = NormalDist().inv_cdf(0.5 + measured.level / 2)
    p = measured.estimate
    binomial = z * math.sqrt(max(p * (1 - p), 1e-12) / measured.n)
    return (measured.half_width / binomial) ** 2
