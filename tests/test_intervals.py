"""Group-bootstrap intervals, paired differences, verdicts and sample sizes, on answers known in
advance."""

from __future__ import annotations

import numpy as np
import pytest

from resemotenet.analysis.intervals import (
    BETTER,
    SAME,
    WORSE,
    Interval,
    bootstrap_accuracy,
    bootstrap_recall,
    design_effect,
    faces_needed,
    more_needed,
    paired_difference,
    verdict,
)
from resemotenet.utils.errors import ConfigError, DataError


def test_right_everywhere_is_exactly_one_and_wrong_everywhere_zero():
    groups = np.repeat(["a", "b", "c"], 4)
    right = bootstrap_accuracy(np.ones(12, bool), groups, n_boot=500)
    assert (right.estimate, right.low, right.high) == (1.0, 1.0, 1.0)
    assert (right.n, right.groups) == (12, 3)
    wrong = bootstrap_accuracy(np.zeros(12, bool), groups, n_boot=500)
    assert (wrong.low, wrong.high) == (0.0, 0.0)


def test_identical_models_differ_by_exactly_zero():
    rng = np.random.default_rng(0)
    correct = rng.random(300) < 0.6
    groups = rng.integers(0, 40, 300).astype(str)
    diff = paired_difference(correct, correct, groups, n_boot=500)
    assert (diff.estimate, diff.low, diff.high) == (0.0, 0.0, 0.0)
    assert diff.contains(0.0) and verdict(diff) == SAME


def test_seeded():
    rng = np.random.default_rng(1)
    correct, groups = rng.random(200) < 0.5, rng.integers(0, 30, 200).astype(str)
    assert bootstrap_accuracy(correct, groups, seed=7) == bootstrap_accuracy(correct, groups, seed=7)
    assert bootstrap_accuracy(correct, groups, seed=7) != bootstrap_accuracy(correct, groups, seed=8)


def test_coverage_on_a_simulated_binomial():
    """About 95 % of the intervals hold the true accuracy (faces independent, one per group)."""
    rng = np.random.default_rng(42)
    p, n, trials = 0.7, 150, 300
    hits = sum(bootstrap_accuracy(rng.random(n) < p, n_boot=400, seed=t).contains(p) for t in range(trials))
    assert 0.90 <= hits / trials <= 0.985, hits / trials


def test_independent_faces_match_the_binomial_width():
    rng = np.random.default_rng(3)
    ci = bootstrap_accuracy(rng.random(2000) < 0.5, n_boot=2000)
    binomial = 1.96 * np.sqrt(ci.estimate * (1 - ci.estimate) / 2000)
    assert abs(ci.half_width - binomial) < 0.15 * binomial
    assert 0.8 < design_effect(ci) < 1.25


def test_groups_of_alike_faces_widen_the_interval():
    """Ten faces per clip, all right or all wrong: the evidence is 60 clips, not 600 faces."""
    rng = np.random.default_rng(4)
    per_clip = rng.random(60) < 0.5
    correct, clips = np.repeat(per_clip, 10), np.repeat(np.arange(60).astype(str), 10)
    by_face = bootstrap_accuracy(correct, n_boot=1000)
    by_clip = bootstrap_accuracy(correct, clips, n_boot=1000)
    assert by_clip.half_width > 2.5 * by_face.half_width
    assert 7 < design_effect(by_clip) < 14


def test_per_class_recall():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 0, 1, 0, 1, 0, 0, 0])
    groups = np.array(["p", "q", "p", "q", "p", "q", "r", "s", "r", "s"])
    recall = bootstrap_recall(y_true, y_pred, groups, n_boot=500)
    assert sorted(recall) == [0, 1, 2]
    assert (recall[0].estimate, recall[0].low, recall[0].high) == (1.0, 1.0, 1.0)
    assert recall[1].estimate == 0.5 and recall[1].low < 0.5 < recall[1].high
    assert (recall[2].estimate, recall[2].high) == (0.0, 0.0)
    assert (recall[1].n, recall[1].groups, recall[2].groups) == (4, 4, 2)


def test_a_real_lead_is_better_and_its_mirror_worse():
    rng = np.random.default_rng(5)
    groups = rng.integers(0, 80, 800).astype(str)
    b = rng.random(800) < 0.55
    a = b | (rng.random(800) < 0.3)  # A fixes some of B's mistakes and breaks none
    diff = paired_difference(a, b, groups, n_boot=1000)
    assert diff.low > 0 and verdict(diff) == BETTER
    assert verdict(paired_difference(b, a, groups, n_boot=1000)) == WORSE
    assert verdict(diff, margin=diff.high) == SAME  # a lead smaller than what matters is no lead


def test_faces_needed_known_values():
    assert faces_needed(0.05) == 385  # the textbook +-5 points at p = 0.5
    assert faces_needed(0.03, accuracy=0.8) == 683
    assert faces_needed(0.05, design_effect=2.0) == 769


def test_more_needed_scales_with_the_square_of_the_width():
    measured = Interval(0.6, 0.5, 0.7, 0.95, n=200, groups=40)
    assert more_needed(measured, 0.05) == 600  # halve the width: four times the faces
    assert more_needed(measured, 0.05, unit="groups") == 120
    assert more_needed(measured, 0.2) == 0


def test_bad_input():
    with pytest.raises(DataError, match="3 groups for 2 faces"):
        bootstrap_accuracy([True, False], ["a", "b", "c"])
    with pytest.raises(DataError, match="same faces"):
        paired_difference([True], [True, False])
    with pytest.raises(ConfigError, match="level"):
        bootstrap_accuracy([True], level=95)
    with pytest.raises(ConfigError, match="unit"):
        more_needed(Interval(0.5, 0.4, 0.6, 0.95, 10, 10), 0.05, unit="people")
