"""Temperature scaling, risk-coverage thresholds (human in the loop) and fairness slices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from resemotenet.analysis.calibration import fit_temperature, nll_at, recommend_threshold, risk_coverage
from resemotenet.analysis.slices import read_attributes, slice_metrics
from resemotenet.cli import main
from resemotenet.labels import EMOTIONS7
from resemotenet.metrics import expected_calibration_error, softmax
from resemotenet.models import load_checkpoint
from resemotenet.utils.errors import DataError


def _synthetic(n: int = 4000, scale: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the model reports ``scale * z`` (over-confident when > 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, 7))
    p = softmax(z)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return z * scale, y


@pytest.mark.parametrize("scale", [3.0, 0.5])
def test_temperature_recovers_the_miscalibration(scale):
    logits, y = _synthetic(scale=scale)
    t = fit_temperature(logits, y)
    assert t == pytest.approx(scale, rel=0.1)
    assert nll_at(logits, y, t) < nll_at(logits, y, 1.0) - 0.05
    before = expected_calibration_error(softmax(logits), y)
    after = expected_calibration_error(softmax(logits, t), y)
    assert after < before / 2
    grid = np.exp(np.linspace(np.log(0.1), np.log(10), 400))
    assert nll_at(logits, y, t) <= min(nll_at(logits, y, g) for g in grid) + 1e-4


def test_temperature_keeps_the_predictions():
    logits, y = _synthetic(500)
    t = fit_temperature(logits, y)
    assert (softmax(logits, t).argmax(1) == logits.argmax(1)).all()
    with pytest.raises(DataError, match="empty"):
        fit_temperature(logits[:0], y[:0])


def test_risk_coverage_is_monotone_and_ends_at_full_accuracy():
    logits, y = _synthetic(2000, scale=1.0)
    probs = softmax(logits)
    rc = risk_coverage(probs, y)
    thr, cov, acc = map(np.array, (rc["threshold"], rc["coverage"], rc["accuracy"]))
    assert (np.diff(thr) < 0).all() and (np.diff(cov) > 0).all()
    assert cov[-1] == 1.0 and acc[-1] == pytest.approx((probs.argmax(1) == y).mean())
    assert np.allclose(np.array(rc["deferred"]) + cov, 1.0)
    assert acc[len(acc) // 10] > acc[-1] + 0.15  # the most confident tenth is far more accurate
    # ties are kept or deferred together
    tied = np.array([[0.6, 0.4], [0.6, 0.4], [0.9, 0.1]])
    assert risk_coverage(tied, np.array([0, 1, 0]))["coverage"] == [pytest.approx(1 / 3), 1.0]


def test_recommended_threshold_reaches_the_target():
    logits, y = _synthetic(3000, scale=1.0)
    probs = softmax(logits)
    rec = recommend_threshold(probs, y, 0.8)
    keep = probs.max(1) >= rec["min_confidence"]
    assert (probs[keep].argmax(1) == y[keep]).mean() >= 0.8
    assert keep.mean() == pytest.approx(rec["coverage"])
    lower = probs.max(1) >= np.sort(probs.max(1)[~keep])[-1]  # admit one more confidence level
    assert (probs[lower].argmax(1) == y[lower]).mean() < 0.8
    assert recommend_threshold(probs, y, 1.01)["min_confidence"] is None


def test_calibrate_cli_stores_the_temperature(tiny_checkpoint, fer2013_csv, tmp_path, capsys):
    out = tmp_path / "cal" / "calibrated.safetensors"
    assert (
        main(
            [
                "calibrate",
                str(tiny_checkpoint),
                "--data",
                f"fer2013:{fer2013_csv}",
                "--output",
                str(out),
                "--target-accuracy",
                "0.3",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "fitted on val" in text and "report only" in text
    _, meta, _ = load_checkpoint(out)
    report = json.loads((out.parent / "calibration.json").read_text())
    assert meta["temperature"] == pytest.approx(report["temperature"]) and meta["temperature"] != 1.0
    assert report["val"]["after"]["nll"] <= report["val"]["before"]["nll"] + 1e-9
    assert load_checkpoint(tiny_checkpoint)[1]["temperature"] == 1.0  # the original is untouched
    rc = json.loads((out.parent / "risk_coverage.json").read_text())
    assert rc["split"] == "val" and (out.parent / "risk_coverage.png").is_file()
    assert main(["eval", str(out), "--data", f"fer2013:{fer2013_csv}", "--output", str(tmp_path / "ev")]) == 0
    evaluated = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert evaluated["temperature"] == pytest.approx(meta["temperature"])


def test_calibrate_refuses_onnx(tmp_path, fer2013_csv, capsys):
    (tmp_path / "m.onnx").write_bytes(b"x")
    assert main(["calibrate", str(tmp_path / "m.onnx"), "--data", f"fer2013:{fer2013_csv}"]) == 2
    assert ".pt or .safetensors" in capsys.readouterr().err


def test_eval_risk_coverage_is_chosen_on_val(tiny_checkpoint, fer2013_csv, tmp_path, capsys):
    assert (
        main(
            [
                "eval",
                str(tiny_checkpoint),
                "--data",
                f"fer2013:{fer2013_csv}",
                "--output",
                str(tmp_path),
                "--risk-coverage",
                "--target-accuracy",
                "0.1",
            ]
        )
        == 0
    )
    rc = json.loads((tmp_path / "risk_coverage.json").read_text())
    assert rc["split"] == "val" and len(rc["test_curve"]["coverage"]) >= 1
    assert rc["recommended"]["min_confidence"] is not None and "test" in rc["recommended"]
    assert "--min-confidence" in capsys.readouterr().out


# ---- fairness slices ---------------------------------------------------------------------------
def _attrs_csv(tmp_path, rows: list[str], header: str = "image,attribute,value"):
    path = tmp_path / "attrs.csv"
    path.write_text("\n".join([header] + rows) + "\n")
    return path


def test_slice_gap_and_unmatched(tmp_path):
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    pred = np.array([0, 1, 2, 3, 0, 0, 0, 3])  # the second half is half wrong
    probs = np.eye(7)[pred]
    ids = [f"row{i}" for i in range(8)]
    rows = [f"row{i},glasses,{'no' if i < 4 else 'yes'}" for i in range(8)] + ["row99,glasses,yes"]
    r = slice_metrics(probs, y, ids, EMOTIONS7, read_attributes(_attrs_csv(tmp_path, rows)))
    g = r["attributes"]["glasses"]
    assert g["groups"]["no"] == {"n": 4, "accuracy": 1.0, "macro_f1": 1.0}
    assert g["groups"]["yes"]["accuracy"] == 0.5 and g["gap"] == 0.5
    assert (g["best"], g["worst"]) == ("no", "yes")
    assert r["unmatched"] == {"count": 1, "examples": ["row99"]} and r["matched"] == 8
    with pytest.raises(DataError, match="none of the 1 images"):
        slice_metrics(probs, y, ids, EMOTIONS7, {"glasses": {"nope": "yes"}})


def test_attribute_file_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="attrs.csv: header must be image,attribute,value"):
        read_attributes(_attrs_csv(tmp_path, ["a,b,c"], header="img,attr,val"))
    with pytest.raises(DataError, match="line 3: 'row1' has two values"):
        read_attributes(_attrs_csv(tmp_path, ["row1,age,young", "row1,age,old"]))
    with pytest.raises(DataError, match="not found"):
        read_attributes(tmp_path / "missing.csv")


def test_eval_cli_writes_slices(tiny_checkpoint, fer2013_csv, tmp_path, capsys):
    # the fixture's test split is rows 175..209 of the csv
    rows = [f"row{i},camera,{'a' if i % 2 else 'b'}" for i in range(175, 210)] + ["ghost.jpg,camera,a"]
    attrs = _attrs_csv(tmp_path, rows)
    assert (
        main(
            [
                "eval",
                str(tiny_checkpoint),
                "--data",
                f"fer2013:{fer2013_csv}",
                "--output",
                str(tmp_path / "o"),
                "--attributes",
                str(attrs),
            ]
        )
        == 0
    )
    s = json.loads((tmp_path / "o" / "slices.json").read_text())
    groups = s["attributes"]["camera"]["groups"]
    assert groups["a"]["n"] + groups["b"]["n"] == 35 and s["unmatched"]["examples"] == ["ghost.jpg"]
    assert "accuracy gap" in capsys.readouterr().out
    bad = _attrs_csv(tmp_path, ["x.jpg,camera,a"])
    assert main(["eval", str(tiny_checkpoint), "--data", f"fer2013:{fer2013_csv}", "--attributes", str(bad)]) == 2
