"""The one review policy: uncertain faces, a track again only after a cooldown or a label change,
near-identical crops once, and a marked audit share of confident faces."""

from __future__ import annotations

import numpy as np
import pytest

from resemotenet.inference.results import FaceResult
from resemotenet.inference.sampling import AUDIT_REASON, UNCERTAIN_REASON, ReviewSampler
from resemotenet.labels import UNCERTAIN
from resemotenet.utils.errors import ConfigError


def face(label: str, track: int | None = None, top: str = "happy") -> FaceResult:
    top2 = [(top, 0.5), ("sad", 0.3)] if label == UNCERTAIN else None
    return FaceResult("cam", 0, 0.0, (0, 0, 10, 10), label, 0.5, {"happy": 0.5}, track, top2)


def crop(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)


def test_uncertain_faces_are_queued_and_confident_ones_are_not_without_audit():
    s = ReviewSampler(audit_rate=0.0)
    picks = s.select([face(UNCERTAIN), face("happy")], [crop(0), crop(1)], "cam", now=0.0, day="2026-12-07")
    assert [(p.index, p.reason) for p in picks] == [(0, UNCERTAIN_REASON)]
    assert picks[0].group == "cam@2026-12-07"  # untracked faces: grouped by source and day


def test_a_track_is_queued_again_only_after_the_cooldown_or_a_label_change():
    s = ReviewSampler(audit_rate=0.0, cooldown_s=30.0, dedupe=0.0)
    first = s.select([face(UNCERTAIN, track=1)], [crop(0)], "cam", now=0.0)
    assert first and first[0].group == "cam#track1"
    assert not s.select([face(UNCERTAIN, track=1)], [crop(1)], "cam", now=10.0)  # same person, same label
    assert s.select([face(UNCERTAIN, track=1, top="sad")], [crop(2)], "cam", now=11.0)  # the label changed
    assert not s.select([face(UNCERTAIN, track=1, top="sad")], [crop(3)], "cam", now=20.0)
    assert s.select([face(UNCERTAIN, track=1, top="sad")], [crop(4)], "cam", now=45.0)  # cooldown over
    # 20 different people in view: each gets a turn
    many = [face(UNCERTAIN, track=t) for t in range(2, 22)]
    assert len(s.select(many, [crop(t) for t in range(2, 22)], "cam", now=50.0)) == 20


def test_near_identical_crops_are_queued_once():
    s = ReviewSampler(audit_rate=0.0, dedupe=3.0)
    c = crop(7)
    assert s.select([face(UNCERTAIN)], [c], "upload", now=0.0)
    again = np.clip(c.astype(int) + 1, 0, 255).astype(np.uint8)  # the same picture, re-encoded
    assert not s.select([face(UNCERTAIN)], [again], "upload", now=1.0)
    assert s.select([face(UNCERTAIN)], [crop(8)], "upload", now=2.0)


def test_the_audit_share_of_confident_faces_is_random_marked_and_near_its_rate():
    s = ReviewSampler(audit_rate=0.05, dedupe=0.0, seed=3)
    reasons = [p.reason for i in range(4000) for p in s.select([face("happy")], [crop(0)], "cam", now=float(i))]
    assert set(reasons) == {AUDIT_REASON}
    assert 0.035 < len(reasons) / 4000 < 0.065  # binomial(4000, 0.05): +-0.015 is over 4 sd


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError):
        ReviewSampler(audit_rate=1.5)
