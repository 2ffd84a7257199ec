"""Fine-tuning on a team's own faces: start from a trained checkpoint, optionally freeze the stem."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import face_like

from resemotenet.cli import main
from resemotenet.models.checkpoint import DEFAULT_WEIGHTS, load_checkpoint

FOLDERS = {"angry": 0, "disgust": 1, "fear": 2, "happiness": 3, "sadness": 4, "Surprised": 5, "neutral": 6}


@pytest.fixture
def site_faces(tmp_path):
    """A team's own data: one folder per emotion (with synonyms), 10 colour images each."""
    rng = np.random.default_rng(0)
    for name, label in FOLDERS.items():
        (tmp_path / "site" / name).mkdir(parents=True)
        for i in range(10):
            gray = cv2.resize(face_like(rng, label), (64, 64))
            cv2.imwrite(str(tmp_path / "site" / name / f"{i}.png"), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    return tmp_path / "site"


def _finetune(init: str, data, out, capsys) -> int:
    return main(
        [
            "train",
            "--init-from",
            init,
            "--data",
            f"folder:{data}",
            "--freeze-stem",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--output",
            str(out),
            "--no-progress",
            "--set",
            "preprocess.size=48",
            "--set",
            "preprocess.channels=1",
            "--set",
            "preprocess.mean=[0.5]",
            "--set",
            "preprocess.std=[0.25]",
        ]
    )


def test_finetune_from_checkpoint_keeps_the_frozen_stem(tiny_checkpoint, site_faces, tmp_path, capsys):
    assert _finetune(str(tiny_checkpoint), site_faces, tmp_path / "run", capsys) == 0
    before, _, _ = load_checkpoint(tiny_checkpoint)
    after, meta, _ = load_checkpoint(tmp_path / "run" / "best.pt")
    assert meta["dataset"] == "folder"
    assert torch.equal(before["conv1.weight"], after["conv1.weight"])  # frozen
    assert torch.equal(before["se.fc.0.weight"], after["se.fc.0.weight"])
    assert not torch.equal(before["fc4.weight"], after["fc4.weight"])  # trained
    assert "test (test) acc" in capsys.readouterr().out


def test_finetune_from_the_shipped_model(site_faces, tmp_path, capsys):
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the shipped weights are not installed")
    assert _finetune("default", site_faces, tmp_path / "run", capsys) == 0
    shipped, _, _ = load_checkpoint(DEFAULT_WEIGHTS)
    after, _, _ = load_checkpoint(tmp_path / "run" / "best.pt")
    assert torch.allclose(shipped["conv2.weight"].float(), after["conv2.weight"])


def test_init_from_alone_keeps_the_checkpoints_architecture_and_preprocessing(
    tiny_checkpoint, site_faces, tmp_path, capsys
):
    # the README's fine-tuning command as a user types it: no config, no preprocessing flags
    for init in ("default", str(tiny_checkpoint)):
        if init == "default" and not DEFAULT_WEIGHTS.is_file():
            continue
        out = tmp_path / f"run-{len(init)}"
        code = main(
            [
                "train",
                "--init-from",
                init,
                "--data",
                f"folder:{site_faces}",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--output",
                str(out),
                "--no-progress",
            ]
        )
        assert code == 0
        _, source, _ = load_checkpoint(DEFAULT_WEIGHTS if init == "default" else init)
        _, meta, _ = load_checkpoint(out / "best.pt")
        assert meta["model"] == source["model"] and meta["preprocess"] == source["preprocess"]
    # an explicit setting still wins over the checkpoint's
    code = main(
        [
            "train",
            "--init-from",
            str(tiny_checkpoint),
            "--data",
            f"folder:{site_faces}",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--output",
            str(tmp_path / "r64"),
            "--no-progress",
            "--set",
            "preprocess.size=64",
        ]
    )
    assert code == 0 and load_checkpoint(tmp_path / "r64" / "best.pt")[1]["preprocess"]["size"] == 64


def test_finetune_from_an_incompatible_checkpoint_is_refused(tiny_checkpoint, site_faces, tmp_path, capsys):
    code = main(
        [
            "train",
            "--init-from",
            str(tiny_checkpoint),
            "--arch",
            "resemotenet_t",
            "--data",
            f"folder:{site_faces}",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--output",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2
    assert "holds 'resemotenet_s'" in capsys.readouterr().err


def test_a_recipe_from_a_checkpoint_keeps_its_framing_and_crop_reduction(site_faces, tmp_path, capsys):
    """A config that continues a checkpoint (init_from) names its own preprocessing but no framing:
    the new card keeps the checkpoint's framing and its reduction of sharp crops, or the continued
    model would be served crops it never saw (looser boxes, unreduced detail)."""
    from resemotenet.config import PreprocessSpec
    from resemotenet.labels import EMOTIONS7
    from resemotenet.models import create_model, save_model
    from resemotenet.models.checkpoint import make_meta

    framing = {"margin": 0.3, "square": True, "shift_y": 0.05, "align": True, "detector_margins": {"centerface": 0.0}}
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,), source_size=24)
    meta = make_meta(
        "resemotenet_s", {"num_classes": 7, "in_chans": 1, "width": 0.125}, spec, EMOTIONS7, framing=framing
    )
    init = save_model(tmp_path / "init.pt", create_model("resemotenet_s", in_chans=1, width=0.125), meta)
    common = ["train", "--data", f"folder:{site_faces}", "--epochs", "1", "--batch-size", "8", "--no-progress"]
    settings = ["model.kwargs={width: 0.125}", "preprocess.size=48", "preprocess.channels=1"]
    settings += ["preprocess.mean=[0.5]", "preprocess.std=[0.25]"]
    recipe = [a for kv in settings for a in ("--set", kv)]
    assert main([*common, "--init-from", str(init), "-o", str(tmp_path / "cont"), *recipe]) == 0
    card = load_checkpoint(tmp_path / "cont" / "best.pt").card
    assert card.framing.to_dict() == framing
    assert card.preprocess.source_size == 24 and card.preprocess.reduce_to == 24
    # from scratch: the default framing, and no reduction the config does not ask for
    assert main([*common, "-o", str(tmp_path / "scratch"), *recipe]) == 0
    card = load_checkpoint(tmp_path / "scratch" / "best.pt").card
    assert card.framing.margin == 0.2 and not card.framing.align and card.preprocess.source_size is None
