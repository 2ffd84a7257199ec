"""benchmarks/generalization.py's faces-from-elsewhere part on a synthetic set: groups as the sets
define them (SFEW: the movie of a clip), the choice restricted to the classes a set holds, and an
image without a detected face counted as wrong."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import face_like

from resemotenet.data.dataset import Split
from resemotenet.labels import EMOTIONS7

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the script imports its sibling _timing
    spec = importlib.util.spec_from_file_location("generalization", BENCHMARKS / "generalization.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("_timing", None)


def make_set(root: Path, rows: list[tuple[str, str, str]], column: str) -> None:
    rng = np.random.default_rng(0)
    lines = [f"file,label,{column}"]
    for file, label, group in rows:
        (root / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / file), face_like(rng, EMOTIONS7.index(label), side=40))
        lines.append(f"{file},{label},{group}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def test_correct_on_present_restricts_the_choice_and_counts_no_face_as_wrong(bench):
    split = Split(name="all", labels=[3, 4], label_names=EMOTIONS7, images=np.zeros((2, 4, 4), np.uint8))
    probs = np.full((2, 7), 0.01)
    probs[0, [0, 3]] = [0.6, 0.3]  # angry wins overall, happy among the classes present
    probs[1] = np.nan  # no face found
    assert bench.correct_on_present(probs, EMOTIONS7, split).tolist() == [True, False]


def test_xdomain_sets_and_scores(bench, tmp_path, tiny_checkpoint):
    clips = [
        (f"{movie}_{clip}", lab) for movie in ("Alpha", "Beta_Two") for clip, lab in (("01", "happy"), ("02", "sad"))
    ]
    rows = [(f"{lab}/{clip}_{i}.png", lab, clip) for clip, lab in clips for i in range(2)]  # movie: before the last _
    make_set(tmp_path / "sfew-train", rows, "clip")
    make_set(
        tmp_path / "yale",
        [(f"{lab}/s{i}_{lab}.png", lab, f"s{i}") for lab in ("happy", "sad") for i in range(3)],
        "subject",
    )
    sets = bench.xdomain_sets(str(tmp_path))
    assert list(sets) == ["sfew-train", "yale"]
    assert sorted(set(sets["sfew-train"][1].groups)) == ["Alpha", "Beta_Two"]
    results = bench.measure_xdomain(str(tiny_checkpoint), sets, n_boot=200)
    sfew, yale = results
    assert (sfew["n"], sfew["groups"], sfew["group_by"]) == (8, 2, "movie")
    assert (yale["classes"], yale["groups"]) == (["happy", "sad"], 3)
    for r in results:  # drawn faces are no faces to a detector: every image counts as wrong
        assert r["no_face"] == r["n"] and r["detector_acc"] == r["detector_high"] == 0.0
        assert r["crop_low"] <= r["crop_acc"] <= r["crop_high"]


def test_the_peer_is_scored_on_the_same_sets(bench, tmp_path, monkeypatch):
    """A peer with no detector of its own (the `fer` package's model) goes through the same path."""
    import torch

    def forward(x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), 7)
        logits[:, EMOTIONS7.index("sad")] = 1.0  # always sad
        return logits

    meta = {"preprocess": {"size": 64, "channels": 1, "mean": [0.5], "std": [0.5]}, "labels": list(EMOTIONS7)}
    monkeypatch.setattr(bench, "tflite_peer", lambda path: (forward, meta))
    make_set(
        tmp_path / "yale",
        [(f"{lab}/s{i}_{lab}.png", lab, f"s{i}") for lab in ("happy", "sad") for i in range(2)],
        "subject",
    )
    (row,) = bench.measure_xdomain("peer", bench.xdomain_sets(str(tmp_path)), n_boot=100, peer="model.tflite")
    assert row["crop_acc"] == 0.5 and row["no_face"] == 4


def test_card_from_scores_a_checkpoint_under_another_models_framing(bench, tiny_checkpoint, tmp_path):
    """``--card-from``: the weights of one file under another card's framing and input (its own
    temperature kept); another label set is refused in one line."""
    import torch

    from resemotenet.config import PreprocessSpec
    from resemotenet.labels import EMOTIONS7
    from resemotenet.models import create_model, load_checkpoint, save_model
    from resemotenet.models.checkpoint import make_meta
    from resemotenet.utils.errors import ConfigError

    framing = {"margin": 0.0, "align": True, "detector_margins": {"centerface": 0.1}}
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,), source_size=24)
    base = make_meta(
        "resemotenet_s", {"num_classes": 7, "in_chans": 1}, spec, EMOTIONS7, framing=framing, temperature=2.0
    )
    torch.manual_seed(1)
    save_model(tmp_path / "base.pt", create_model("resemotenet_s", in_chans=1), base)
    model, card = bench.open_scored(str(tiny_checkpoint), str(tmp_path / "base.pt"))
    assert card.framing.align and card.framing.margin_for("centerface") == 0.1 and card.preprocess.reduce_to == 24
    assert card.temperature == 1.0  # the scored checkpoint's own
    own = load_checkpoint(tiny_checkpoint).state
    assert all(torch.equal(v, own[k]) for k, v in model.state_dict().items())
    other = make_meta("resemotenet_s", {"num_classes": 7, "in_chans": 1}, spec, [*EMOTIONS7[:-1], "calm"])
    save_model(tmp_path / "other.pt", create_model("resemotenet_s", in_chans=1), other)
    with pytest.raises(ConfigError, match="another architecture or label set"):
        bench.open_scored(str(tiny_checkpoint), str(tmp_path / "other.pt"))
