"""Splits held in memory as uint8 arrays, the honest train/val/test protocol, and batching.

A reader returns its official splits as ``Split`` objects; ``build_splits`` turns them into
train / val / test under one rule: the test split never feeds model selection. Where a dataset
has no official validation split, one is carved from the (un-augmented) training set,
stratified and seeded, and written to a split file that later runs reuse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..imaging import MAX_PIXELS, read_image  # noqa: F401  (their home is resemotenet.imaging)
from ..utils.errors import DataError
from ..utils.io import atomic_write_text, cache_arrays, cache_dir, load_cached
from .splits import group_split, shared_groups


@dataclass
class Split:
    """One split of one dataset. Exactly one of ``images`` / ``paths`` is set.

    ``labels`` are canonical indices into ``label_names``; ``soft`` (optional) are per-class
    vote distributions; ``ids`` are stable names for split files, audits and attribute CSVs;
    ``groups`` (optional, one string per face) name faces that belong together (a person, a clip):
    carved splits never put one group in two parts, and intervals resample whole groups.
    """

    name: str
    labels: np.ndarray
    label_names: tuple[str, ...]
    images: np.ndarray | None = None
    paths: list[str] | None = None
    boxes: np.ndarray | None = None
    soft: np.ndarray | None = None
    ids: list[str] = field(default_factory=list)
    source: str = ""
    # whether decoded pixels of ``paths`` may be kept in the cache folder: True for published
    # datasets, False for a team's own faces (``folder:``), which are never copied anywhere
    cacheable: bool = True
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.groups is not None:
            self.groups = np.asarray(self.groups, dtype=str)
            if len(self.groups) != len(self.labels):
                raise DataError(f"{len(self.groups)} groups for {len(self.labels)} faces")
        if not self.ids:
            self.ids = [str(i) for i in range(len(self.labels))]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray | list[int], name: str | None = None) -> Split:
        idx = np.asarray(idx, dtype=np.int64)
        return replace(
            self,
            name=name or self.name,
            labels=self.labels[idx],
            images=None if self.images is None else self.images[idx],
            paths=None if self.paths is None else [self.paths[i] for i in idx],
            boxes=None if self.boxes is None else self.boxes[idx],
            soft=None if self.soft is None else self.soft[idx],
            ids=[self.ids[i] for i in idx],
            groups=None if self.groups is None else self.groups[idx],
        )

    def counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.label_names))


def materialize(split: Split, size: int, gray: bool = False, reduce_to: int | None = None) -> np.ndarray:
    """uint8 images of ``split`` at ``size`` x ``size`` (decoding ``paths`` once, with a cache).

    ``reduce_to`` (``PreprocessSpec.reduce_to``): images larger than this are shrunk to it first."""
    from .transforms import resize_face

    if split.images is not None:
        imgs = split.images
        if imgs.shape[1] == size and imgs.shape[2] == size:
            return imgs
        return np.stack([resize_face(im, size, reduce_to) for im in imgs]) if len(imgs) else imgs
    paths = split.paths or []
    cached = None
    if split.cacheable and paths:
        import hashlib

        # keyed by each file's size and modification time too: an image replaced under the same
        # name is decoded again, never served stale from the cache
        stats = [_stat(p) for p in paths]
        boxes = None if split.boxes is None else split.boxes.tolist()
        parts = [split.source, paths, stats, boxes, size, gray] + ([reduce_to] if reduce_to else [])
        key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]
        cached = cache_dir() / f"images-{key}.npy"
        if (hit := load_cached(cached)) is not None:  # a damaged cache file is dropped and rebuilt
            return hit
    out = np.zeros((len(split), size, size) if gray else (len(split), size, size, 3), np.uint8)
    for i, path in enumerate(paths):
        img = read_image(path, None if split.boxes is None else split.boxes[i])
        if gray:
            img = (img @ np.array([0.299, 0.587, 0.114])).round().astype(np.uint8)
        out[i] = resize_face(img, size, reduce_to)
    if cached is not None:
        cache_arrays(cached, array=out)
    return out


def _stat(path: str) -> tuple[int, int]:
    try:
        st = Path(path).stat()
    except OSError:
        return (-1, -1)  # read_image reports the missing file
    return (st.st_size, st.st_mtime_ns)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): ``fraction`` of every class held out, seeded."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(len(idx) * fraction))
        held.append(idx[:k])
        keep.append(idx[k:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def build_splits(official: dict[str, Split], cfg: DataConfig) -> dict[str, Split]:
    """Official splits -> {'train', 'val', 'test'} under the honest protocol (see module doc)."""
    splits = dict(official)
    if "all" in splits:  # no official split at all (ExpW, a plain folder): carve test first
        every = splits.pop("all")
        rest, test = _carved(every, cfg, "test")
        splits["train"], splits["test"] = rest, test
    if "val" not in splits:
        splits["train"], splits["val"] = _carved(splits["train"], cfg, "val")
    if cfg.exclude_file:
        splits["train"] = _exclude(splits["train"], cfg.exclude_file)
    for name in ("train", "val", "test"):
        if name not in splits or len(splits[name]) == 0:
            raise DataError(f"{cfg.root}: the {name} split is empty")
    if cfg.limit:
        splits = {k: v.subset(np.arange(min(cfg.limit, len(v)))) for k, v in splits.items()}
    return splits


def _carved(split: Split, cfg: DataConfig, part: str) -> tuple[Split, Split]:
    """Hold out a stratified part of ``split``, whole groups at a time when its faces carry
    groups (``splits.group_split``); the choice is saved and reused by later runs."""
    path = (
        Path(cfg.split_file)
        if cfg.split_file
        else cache_dir()
        / "splits"
        / (f"{cfg.name}-{_digest(split)}-{part}-{cfg.val_fraction}-seed{cfg.split_seed}.json")
    )
    saved = json.loads(path.read_text()) if path.is_file() else {}
    if part in saved:
        held_ids = set(saved[part])
        mask = np.array([i in held_ids for i in split.ids])
        held, keep = np.flatnonzero(mask), np.flatnonzero(~mask)
    elif split.groups is not None:
        fractions = (1.0 - cfg.val_fraction, cfg.val_fraction)
        keep, held = group_split(split.labels, split.groups, fractions, cfg.split_seed)
    else:
        keep, held = stratified_split(split.labels, cfg.val_fraction, cfg.split_seed)
    if part not in saved:
        saved[part] = [split.ids[i] for i in held]
        atomic_write_text(path, json.dumps(saved))
    if split.groups is not None and (both := shared_groups(split.groups, keep, held)):
        raise DataError(
            f"{path}: puts {len(both)} group(s) in both train and {part} (first: {', '.join(both[:3])}); "
            f"delete it to carve the split again by group"
        )
    return split.subset(keep, "train"), split.subset(held, part)


def _digest(split: Split) -> str:
    """Names the faces (and their groups, where faces share one), so a saved carve is reused only
    for the same data grouped the same way."""
    import hashlib

    text = "\n".join(split.ids)
    if split.groups is not None and len(np.unique(split.groups)) < len(split.groups):
        text += "\n# groups\n" + "\n".join(split.groups)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _exclude(split: Split, exclude_file: str) -> Split:
    """Drop training rows listed in a de-duplication file (see ``resemotenet audit``)."""
    p = Path(exclude_file)
    if not p.is_file():
        raise DataError(f"{p}: exclude file not found")
    try:
        drop = set(map(str, json.loads(p.read_text())["exclude_train"]))
    except (ValueError, KeyError) as exc:
        raise DataError(f"{p}: not a split file with an 'exclude_train' list") from exc
    keep = [i for i, sid in enumerate(split.ids) if sid not in drop]
    return split.subset(keep)


class BatchLoader:
    """Batches of (uint8 images (B, C, H, W), targets) from in-memory tensors.

    Distributed-safe: with ``world`` > 1 each rank takes an interleaved shard of one shared
    permutation, so every sample is seen exactly once per epoch across ranks. With ``drop_last``
    (training) the permutation is first cut to a multiple of ``world`` (at most ``world - 1``
    samples wait for the next epoch's permutation), so every rank takes the same number of steps,
    which DistributedDataParallel requires.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        weights: torch.Tensor | None = None,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = False,
    ):
        self.images, self.targets = images, targets
        self.batch_size, self.shuffle, self.weights = batch_size, shuffle, weights
        self.seed, self.rank, self.world, self.drop_last = seed, rank, world, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        n = len(self.targets)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.weights is not None:
            return torch.multinomial(self.weights, n, replacement=True, generator=g)
        return torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)

    def indices(self) -> torch.Tensor:
        order = self._order()
        if self.drop_last and self.world > 1:
            order = order[: len(order) - len(order) % self.world]
        return order[self.rank :: self.world]

    def __len__(self) -> int:
        n = len(self.indices())
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self.indices()
        for b in range(len(self)):
            sel = idx[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.images[sel], self.targets[sel]
