"""The HTML run report: one self-contained page, a section per file present, a clear message
when a folder holds nothing to report."""

from __future__ import annotations

import base64
import json
import re

import cv2
import numpy as np
import pytest

from resemotenet.cli import main
from resemotenet.report import build_report, risk_coverage_png, robustness_png

RESULTS = (
    "epoch,lr,train_loss,train_acc,epoch_time_s,val_loss,val_acc,val_macro_f1,best_val_acc\n"
    "0,0.05,1.8,0.25,70.0,1.6,0.36,0.22,0.36\n1,0.04,1.5,0.41,70.0,1.4,0.47,0.40,0.47\n"
)


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_full_report_from_eval_outputs(tiny_checkpoint, fer2013_csv, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.csv").write_text(RESULTS)
    (run / "config.yaml").write_text("model: {name: resemotenet_s}\ndata: {name: fer2013}\nepochs: 2\n")
    attrs = tmp_path / "attrs.csv"
    attrs.write_text("image,attribute,value\n" + "".join(f"row{i},glasses,{i % 2}\n" for i in range(175, 210)))
    assert (
        main(
            [
                "eval",
                str(tiny_checkpoint),
                "--data",
                f"fer2013:{fer2013_csv}",
                "--output",
                str(run),
                "--corruptions",
                "blur",
                "--severities",
                "1",
                "--attributes",
                str(attrs),
                "--risk-coverage",
                "--target-accuracy",
                "0.1",
            ]
        )
        == 0
    )
    assert main(["audit", "--data", f"fer2013:{fer2013_csv}", "--output", str(run), "--examples", "2"]) == 0
    assert main(["report", str(run), "--output", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    for title in (
        "Training curves",
        "Metrics",
        "Confusion matrix",
        "Reliability",
        "Risk-coverage",
        "Robustness under corruptions",
        "Fairness slices",
        "Data audit",
    ):
        assert f"<h2>{title}" in page, title
    pngs = sorted(p.name for p in run.glob("*.png"))
    assert {"confusion.png", "reliability.png", "robustness.png", "risk_coverage.png", "audit_near.png"} <= set(pngs)
    embedded = _images(page)
    assert len(embedded) == len(pngs)
    assert sorted(embedded) == sorted(p.read_bytes() for p in run.glob("*.png"))  # the files themselves
    assert not re.search(r'(src|href)="(?!data:)', page) and "http" not in page.replace("http-equiv", "")
    assert "<style>" in page and "best val_acc 0.4700 at epoch 2" in page
    assert "glasses" in page and "redundant rows" in page and "resemotenet_s" in page


def test_sections_follow_the_files(tmp_path):
    (tmp_path / "results.csv").write_text(RESULTS)
    page = build_report(tmp_path).read_text()
    assert "<h2>Training curves" in page and "<h2>Robustness" not in page and "<h2>Metrics" not in page
    assert _images(page) == []
    m = {
        "n": 4,
        "accuracy": 0.5,
        "labels": ["a", "b"],
        "confusion": [[2, 0], [2, 0]],
        "per_class": {
            "a": {"precision": 0.5, "recall": 1.0, "f1": 0.67, "support": 2},
            "b": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2},
        },
    }
    (tmp_path / "test_metrics.json").write_text(json.dumps(m))
    page = build_report(tmp_path).read_text()
    assert "<h2>Metrics" in page and "<h2>Confusion matrix" in page and "true \\ predicted" in page


def test_missing_inputs_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.csv, test_metrics.json, metrics.json" in err[0] and str(tmp_path) in err[0]
    assert main(["report", str(tmp_path / "absent")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    (tmp_path / "metrics.json").write_text("{broken")
    assert main(["report", str(tmp_path)]) == 2
    assert "metrics.json: not readable JSON" in capsys.readouterr().err


def test_figures_render(tmp_path):
    pytest.importorskip("matplotlib")
    rob = {
        "split": "test",
        "severities": [1, 2, 3],
        "clean": {"accuracy": 0.7},
        "corruptions": {"blur": {str(s): {"accuracy": 0.7 - 0.1 * s} for s in (1, 2, 3)}},
    }
    rc = {
        "split": "val",
        "curve": {"coverage": [0.1, 0.5, 1.0], "accuracy": [0.99, 0.9, 0.7]},
        "recommended": {"target_accuracy": 0.9, "min_confidence": 0.6, "coverage": 0.5, "accuracy": 0.9},
    }
    for draw, data, name in ((robustness_png, rob, "rob.png"), (risk_coverage_png, rc, "rc.png")):
        img = cv2.imread(str(draw(data, tmp_path / name)))
        assert img is not None and img.shape[0] > 200 and np.ptp(img) > 0


def test_ablation_ledger_skips_finished_runs(fer2013_csv, tmp_path, capsys, monkeypatch):
    """benchmarks/ablation.py: a finished run is recorded once; started again it is not retrained."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"
    spec = importlib.util.spec_from_file_location("ablation", path)
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    argv = [
        "--data",
        f"fer2013:{fer2013_csv}",
        "--epochs",
        "1",
        "--limit",
        "100",
        "--seeds",
        "0",
        "--variants",
        "resemotenet_s_plain",
        "--output",
        str(tmp_path / "abl"),
    ]
    assert ablation.main(argv) == 0
    ledger = [json.loads(line) for line in (tmp_path / "abl" / "ledger.jsonl").read_text().splitlines()]
    assert len(ledger) == 1 and ledger[0]["variant"] == "resemotenet_s_plain" and 0 <= ledger[0]["test_acc"] <= 1
    capsys.readouterr()

    import resemotenet.engine.trainer as trainer

    monkeypatch.setattr(trainer, "train", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert ablation.main(argv) == 0
    out = capsys.readouterr().out
    assert "finished earlier, skipped" in out and "resemotenet_s_plain     1" in out
    assert len((tmp_path / "abl" / "ledger.jsonl").read_text().splitlines()) == 1
    assert ablation.main(argv[:-3] + ["nonexistent_model", "--output", str(tmp_path / "abl")]) == 2


def test_ablation_paired_test_and_convergence_columns():
    """The paired t-test matches Student's t with 2 degrees of freedom (closed form), and the
    summary says how many runs converged and how each variant differs from the first."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"
    spec = importlib.util.spec_from_file_location("ablation", path)
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    t, p = ablation.paired_t([1.0, 2.0, 3.5], [0.5, 1.0, 2.0])
    assert t == pytest.approx(2 * 3**0.5) and p == pytest.approx(1 - t / (2 + t * t) ** 0.5, abs=1e-6)
    entries = [
        {"variant": v, "seed": s, "val_acc": 0.5, "test_acc": acc + 0.01 * s, "converged": s != 2}
        for v, acc in (("full", 0.50), ("nose", 0.48))
        for s in (0, 1, 2)
    ]
    table = ablation.summary(entries, ["full", "nose"])
    assert "2/3" in table and "-2.00 pt" in table
