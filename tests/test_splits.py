"""Grouped splits: no group in two parts, seeded, stratified as well as whole groups allow, and
the carve of ``build_splits`` respects the groups of a folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from resemotenet.config import DataConfig
from resemotenet.data.dataset import Split, build_splits
from resemotenet.data.splits import group_split, shared_groups
from resemotenet.utils.errors import ConfigError, DataError


def grouped_faces(n_groups: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Groups of 1-8 faces; each group leans to one class, as a person's clip does."""
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for g in range(n_groups):
        size = int(rng.integers(1, 9))
        lean = g % 5
        labels += [lean if rng.random() < 0.7 else int(rng.integers(0, 5)) for _ in range(size)]
        groups += [f"person{g:02d}"] * size
    return np.array(labels), np.array(groups)


def test_no_group_in_two_parts_and_every_face_placed_once():
    labels, groups = grouped_faces()
    parts = group_split(labels, groups, (0.7, 0.15, 0.15), seed=3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))
    for i in range(3):
        for j in range(i + 1, 3):
            assert shared_groups(groups, parts[i], parts[j]) == []
    assert all(len(p) for p in parts)


def test_seeded_and_deterministic():
    labels, groups = grouped_faces()
    a = group_split(labels, groups, (0.8, 0.2), seed=1)
    b = group_split(labels, groups, (0.8, 0.2), seed=1)
    c = group_split(labels, groups, (0.8, 0.2), seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_stratified_as_far_as_groups_allow():
    labels, groups = grouped_faces(n_groups=120, seed=5)
    keep, held = group_split(labels, groups, (0.75, 0.25), seed=0)
    share = len(held) / len(labels)
    assert 0.22 < share < 0.28
    per_class = np.bincount(labels[held], minlength=5) / np.bincount(labels, minlength=5)
    assert np.all(np.abs(per_class - 0.25) < 0.06), per_class


def test_one_face_per_group_is_an_exact_stratified_split():
    labels = np.repeat(np.arange(7), 5)
    groups = np.array([f"f{i}" for i in range(len(labels))])
    keep, held = group_split(labels, groups, (0.8, 0.2), seed=0)
    assert np.bincount(labels[held]).tolist() == [1] * 7


def test_every_open_part_gets_a_group_even_when_its_share_is_below_one_group():
    labels = np.zeros(100, np.int64)
    groups = np.repeat([f"g{i}" for i in range(10)], 10)  # ten groups of ten faces; 1 % is one face
    parts = group_split(labels, groups, (0.5, 0.49, 0.01), seed=0)
    assert [len(p) for p in parts] == [50, 40, 10]


def test_bad_arguments():
    with pytest.raises(DataError, match="2 group\\(s\\) cannot fill 3 parts"):
        group_split([0, 1, 0], ["a", "b", "a"], (0.5, 0.25, 0.25))
    with pytest.raises(ConfigError, match="sum to 1"):
        group_split([0, 1], ["a", "b"], (0.5, 0.4))
    with pytest.raises(DataError, match="3 groups for 2 labels"):
        group_split([0, 1], ["a", "b", "c"], (0.5, 0.5))


def grouped_split(n_groups: int = 30) -> Split:
    labels, groups = grouped_faces(n_groups)
    return Split(
        name="all",
        labels=labels,
        label_names=("a", "b", "c", "d", "e"),
        images=np.zeros((len(labels), 4, 4), np.uint8),
        ids=[f"{g}/{i}.png" for i, g in enumerate(groups)],
        groups=groups,
    )


def test_build_splits_carves_whole_groups(tmp_path):
    cfg = DataConfig(name="folder", root=str(tmp_path), val_fraction=0.2, split_seed=4)
    splits = build_splits({"all": grouped_split()}, cfg)
    sets = {k: set(v.groups) for k, v in splits.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    again = build_splits({"all": grouped_split()}, cfg)  # the saved carve is reused as it was
    assert again["test"].ids == splits["test"].ids and again["val"].ids == splits["val"].ids


def test_a_split_file_that_cuts_through_groups_is_refused(tmp_path):
    data = grouped_split()
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps({"test": data.ids[:3]}))  # person00 has more than three faces
    cfg = DataConfig(name="folder", root=str(tmp_path), split_file=str(split_file))
    assert np.sum(data.groups == data.groups[0]) > 3
    with pytest.raises(DataError, match=r"split\.json: puts 1 group\(s\) in both train and test \(first: person00\)"):
        build_splits({"all": data}, cfg)


def test_subset_keeps_groups_and_counts_must_match():
    data = grouped_split()
    assert data.subset([0, 5]).groups.tolist() == [data.groups[0], data.groups[5]]
    with pytest.raises(DataError, match="2 groups for 3 faces"):
        Split(name="x", labels=[0, 1, 2], label_names=("a", "b", "c"), groups=["g", "h"])
