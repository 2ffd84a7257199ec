"""The site loop's fine-tune: grouped parts, card inheritance, the before/after and its refusals."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import face_like

from resemotenet.analysis.site import compare, finetune, site_parts
from resemotenet.cli import main
from resemotenet.data.readers import get_reader
from resemotenet.engine.finetune import FinetuneRecipe
from resemotenet.models.checkpoint import load_checkpoint
from resemotenet.utils.errors import DataError, OutputExistsError

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _site(root, people=10, per_class=2, seed=0):
    """A site folder: <emotion>/<person>_<i>.png and groups.csv naming each face's person."""
    rng = np.random.default_rng(seed)
    rows = ["file,group"]
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for person in range(people):
            for i in range(per_class):
                gray = cv2.resize(face_like(rng, label), (64, 64))
                f = f"{name}/p{person}_{i}.png"
                cv2.imwrite(str(root / f), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
                rows.append(f"{f},person{person}")
    (root / "groups.csv").write_text("\n".join(rows) + "\n")
    return root


def test_parts_never_split_a_person(tmp_path):
    root = _site(tmp_path / "site")
    train, val, test = site_parts(get_reader("folder")(root), seed=3)
    sets = [set(s.groups.tolist()) for s in (train, val, test)]
    assert sets[0] and sets[1] and sets[2]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert len(train) + len(val) + len(test) == 7 * 10 * 2


def test_finetune_inherits_the_card_and_reports_intervals(tmp_path, tiny_checkpoint):
    root = _site(tmp_path / "site")
    recipe = FinetuneRecipe(layers="head", epochs=2, batch_size=16, rehearsal=0.0)
    report = finetune(str(tiny_checkpoint), root, tmp_path / "out", recipe)
    held = report["held_out"]
    assert held["faces"] == report["parts"]["test"]["faces"] > 0
    for key in ("before", "after", "difference"):
        iv = held["all"][key]
        assert iv["low"] <= iv["estimate"] <= iv["high"]
    assert held["verdict"] in ("better", "worse", "no measurable difference", "too few held-out groups to decide")
    base_state, base_meta, _ = load_checkpoint(tiny_checkpoint)
    state, meta, _ = load_checkpoint(tmp_path / "out" / "model.safetensors")
    for key in ("framing", "preprocess", "labels", "model"):
        assert meta[key] == base_meta[key]  # served exactly as the base is framed and preprocessed
    assert meta["temperature"] == pytest.approx(report["temperature"])
    assert "fine-tuned on" in meta["training_data"]
    # only the head learned
    assert torch_equal(state["conv1.weight"], base_state["conv1.weight"])
    assert not torch_equal(state["fc4.weight"], base_state["fc4.weight"])
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["held_out"]["all"]["faces"] == held["all"]["faces"]
    with pytest.raises(OutputExistsError, match="--force"):
        finetune(str(tiny_checkpoint), root, tmp_path / "out", recipe)


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_too_few_faces_per_class_is_one_line(tmp_path, tiny_checkpoint, capsys):
    root = _site(tmp_path / "site", people=10, per_class=1)
    for f in list((root / "fear").iterdir())[1:]:
        f.unlink()
    rows = [r for r in (root / "groups.csv").read_text().splitlines() if not r.startswith("fear/") or "p0_" in r]
    (root / "groups.csv").write_text("\n".join(rows) + "\n")
    code = main(
        ["finetune", str(tiny_checkpoint), "--data", f"folder:{root}", "-o", str(tmp_path / "o"), "--epochs", "1"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert "fear" in err[0] or "groups" in err[0]
    assert not (tmp_path / "o").exists()


def test_compare_sees_a_regression_on_confident_faces():
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 3, n)
    groups = np.array([f"g{i // 4}" for i in range(n)])
    base = np.full((n, 3), 0.05)
    base[np.arange(n), y] = 0.9  # the base is right and sure everywhere
    new = base.copy()
    new[: n // 2] = base[: n // 2][:, [1, 2, 0]]  # the fine-tune breaks half of them
    out = compare(base, new, y, groups, ("a", "b", "c"), base_threshold=0.5, n_boot=500)
    assert out["confident"]["verdict"] == "worse" and out["regression_on_confident"]
    assert out["all"]["before"]["estimate"] == 1.0 and out["all"]["after"]["estimate"] == pytest.approx(0.5)
    assert out["uncertain"] == {"faces": 0}


def test_finetune_refuses_a_folder_of_one_group(tmp_path, tiny_checkpoint):
    root = _site(tmp_path / "site", people=1)
    with pytest.raises(DataError):
        finetune(str(tiny_checkpoint), root, tmp_path / "out", FinetuneRecipe(epochs=1, rehearsal=0.0))
