"""Corruptions (deterministic, graded by severity), accuracy under them, and evaluation across
datasets whose label sets differ."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import face_like

from resemotenet.analysis.robustness import CORRUPTIONS, corrupt, evaluate_corruptions, parse_corruptions
from resemotenet.cli import main
from resemotenet.config import PreprocessSpec
from resemotenet.data.dataset import Split
from resemotenet.engine.evaluator import evaluate
from resemotenet.labels import EMOTIONS7
from resemotenet.utils.errors import ConfigError

SPEC = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))


def _faces(n: int = 16, rgb: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    faces = np.stack([face_like(rng, i % 7) for i in range(n)])
    return np.repeat(faces[..., None], 3, -1) if rgb else faces


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_is_deterministic_and_graded(name):
    faces = _faces()
    change = []
    for s in (1, 2, 3):
        a, b = corrupt(faces, name, s, seed=0), corrupt(faces, name, s, seed=0)
        assert a.dtype == np.uint8 and a.shape == faces.shape
        assert np.array_equal(a, b)
        change.append(np.abs(a.astype(int) - faces).mean())
    assert 0 < change[0] < change[1] < change[2], change


def test_seed_changes_random_corruptions_only():
    faces = _faces()
    assert not np.array_equal(corrupt(faces, "gaussian_noise", 2, 0), corrupt(faces, "gaussian_noise", 2, 1))
    assert not np.array_equal(corrupt(faces, "occlusion", 2, 0), corrupt(faces, "occlusion", 2, 1))
    assert np.array_equal(corrupt(faces, "blur", 2, 0), corrupt(faces, "blur", 2, 1))


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_rgb_images_are_supported(name):
    faces = _faces(4, rgb=True)
    out = corrupt(faces, name, 3)
    assert out.shape == faces.shape and not np.array_equal(out, faces)


def test_occlusion_blacks_out_the_stated_share():
    faces = np.full((5, 50, 50), 200, np.uint8)
    out = corrupt(faces, "occlusion", 3)  # 0.4 of the side -> a 20 x 20 square
    assert ((out == 0).sum(axis=(1, 2)) == 400).all()


def test_unknown_names_list_the_valid_ones():
    assert parse_corruptions("all") == list(CORRUPTIONS)
    with pytest.raises(ConfigError, match="valid: all, gaussian_noise, blur, low_light, jpeg, occlusion"):
        parse_corruptions("blur,fog")
    with pytest.raises(ConfigError, match="severities"):
        corrupt(_faces(2), "blur", 4)


def _split(n: int = 21, labels: tuple[str, ...] = EMOTIONS7) -> Split:
    rng = np.random.default_rng(1)
    y = np.arange(n) % len(labels)
    return Split("test", y, labels, images=np.stack([face_like(rng, int(v)) for v in y]))


def test_evaluate_corruptions_table(tiny_checkpoint):
    from resemotenet.models import load_model

    model = load_model(tiny_checkpoint)
    r = evaluate_corruptions(model, _split(), EMOTIONS7, SPEC, "blur,jpeg", [1, 3])
    assert set(r["corruptions"]) == {"blur", "jpeg"} and set(r["corruptions"]["blur"]) == {"1", "3"}
    assert r["params"]["jpeg"] == [40, 8] and r["n"] == 21
    clean = evaluate(model, _split(), EMOTIONS7, SPEC)["accuracy"]
    assert r["clean"]["accuracy"] == pytest.approx(clean)
    accs = [v["accuracy"] for per in r["corruptions"].values() for v in per.values()]
    assert r["mean_corrupted_accuracy"] == pytest.approx(np.mean(accs))


def test_eval_cli_writes_robustness_files(tiny_checkpoint, fer2013_csv, tmp_path, capsys):
    out = tmp_path / "ev"
    args = [
        "eval",
        str(tiny_checkpoint),
        "--data",
        f"fer2013:{fer2013_csv}",
        "--output",
        str(out),
        "--corruptions",
        "gaussian_noise,occlusion",
        "--severities",
        "1,2",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "gaussian_noise" in text and "mean corrupted accuracy" in text
    r = json.loads((out / "robustness.json").read_text())
    assert r["severities"] == [1, 2] and r["n"] == 35
    assert cv2.imread(str(out / "robustness.png")) is not None
    with pytest.raises(SystemExit) as exc:  # rejected while parsing, before any evaluation
        main(args[:-4] + ["--corruptions", "fog"])
    assert exc.value.code == 2 and "valid: all, gaussian_noise" in capsys.readouterr().err


# ---- cross-dataset: a model evaluated on data with another label set ----------------------------
def _folder(root, classes: list[str], per_class: int = 3) -> None:
    rng = np.random.default_rng(2)
    for split in ("train", "val", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                face = face_like(rng, EMOTIONS7.index(c) if c in EMOTIONS7 else 0)
                cv2.imwrite(str(root / split / c / f"{i}.png"), face)


def test_seven_class_model_on_six_class_folder(tiny_checkpoint, tmp_path, capsys):
    """A folder without neutral: every image is evaluated, neutral simply has no support."""
    _folder(tmp_path / "d", [c for c in EMOTIONS7 if c != "neutral"])
    data = f"folder:{tmp_path / 'd'}"
    assert main(["eval", str(tiny_checkpoint), "--data", data, "--output", str(tmp_path / "o")]) == 0
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["n"] == 18 and m["per_class"]["neutral"]["support"] == 0
    assert sum(m["per_class"][c]["support"] for c in EMOTIONS7) == 18


def test_seven_class_model_on_data_with_contempt(tiny_checkpoint, tmp_path):
    """An 8-class folder (with contempt): evaluation runs on the 7 shared labels."""
    _folder(tmp_path / "d", list(EMOTIONS7) + ["contempt"], per_class=2)
    data = f"folder:{tmp_path / 'd'}"
    assert main(["eval", str(tiny_checkpoint), "--data", data, "--output", str(tmp_path / "o")]) == 0
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["n"] == 14 and m["labels"] == list(EMOTIONS7) and "7 shared labels" in m["note"]


def test_restricted_probabilities_are_renormalised(tiny_checkpoint):
    """Data labelled with six classes: the model's neutral column is dropped, rows sum to one."""
    from resemotenet.models import load_model

    six = tuple(c for c in EMOTIONS7 if c != "neutral")
    m = evaluate(load_model(tiny_checkpoint), _split(12, six), EMOTIONS7, SPEC)
    assert m["labels"] == list(six) and m["n"] == 12 and "note" in m
    assert m.probs.shape == (12, 6)
    assert np.allclose(m.probs.sum(1), 1.0, atol=1e-5)
