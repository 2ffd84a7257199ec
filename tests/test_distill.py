"""Knowledge distillation: the loss against a hand computation, the frozen teacher, a teacher with
other preprocessing, and ``resemotenet distill`` end to end on a fixture."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from resemotenet.cli import main
from resemotenet.config import PreprocessSpec
from resemotenet.engine.tasks import ClassificationTask, DistillationTask
from resemotenet.labels import EMOTIONS8
from resemotenet.models import create_model, save_model
from resemotenet.models.checkpoint import load_checkpoint, make_meta
from resemotenet.utils.errors import ConfigError

SPEC = PreprocessSpec(size=16, channels=1, mean=(0.5,), std=(0.25,))


class Linear(nn.Module):
    """A tiny classifier over flattened pixels that records the shapes it was given."""

    def __init__(self, in_features: int, num_classes: int = 7, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.num_classes = num_classes
        self.fc = nn.Linear(in_features, num_classes)
        self.drop = nn.Dropout(0.5)
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return self.fc(self.drop(x.flatten(1))) * 3


def batch(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 16, 16, generator=g), torch.randint(0, 7, (n,), generator=g)


def hand_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """T^2 * mean over the batch of sum_c p_t log(p_t / p_s), both softened by T."""
    p_t = torch.softmax(teacher_logits / tau, 1)
    p_s = torch.softmax(student_logits / tau, 1)
    return tau * tau * (p_t * (p_t.log() - p_s.log())).sum(1).mean()


def test_alpha_one_is_temperature_scaled_kl_computed_by_hand():
    student, teacher = Linear(256, seed=1).eval(), Linear(256, seed=2)
    x, y = batch()
    task = DistillationTask(teacher, SPEC, SPEC, alpha=1.0, temperature=4.0)
    loss, logits = task.loss(student, x, y, torch.Generator())
    with torch.no_grad():
        expected = hand_kl(student(x), teacher(x), 4.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(logits, student(x))
    ce, _ = ClassificationTask().loss(student, x, y, torch.Generator())
    assert abs(loss.item() - ce.item()) > 1e-3  # distillation is not plain cross-entropy


def test_alpha_mixes_cross_entropy_and_kl_and_keeps_class_weights():
    student, teacher = Linear(256, seed=1).eval(), Linear(256, seed=2)
    x, y = batch(seed=3)
    w = torch.tensor([1.0, 5.0, 1.0, 0.5, 1.0, 2.0, 1.0])
    ce, _ = ClassificationTask(class_weights=w, label_smoothing=0.1).loss(student, x, y, torch.Generator())
    task = DistillationTask(teacher, SPEC, SPEC, alpha=0.3, temperature=2.0, class_weights=w, label_smoothing=0.1)
    loss, _ = task.loss(student, x, y, torch.Generator())
    with torch.no_grad():
        kl = hand_kl(student(x), teacher(x), 2.0)
    assert loss.item() == pytest.approx((0.7 * ce + 0.3 * kl).item(), rel=1e-5)


def test_teacher_is_frozen_in_eval_mode_and_gets_its_own_preprocessing():
    student = Linear(256, seed=1)
    teacher = Linear(3 * 24 * 24, seed=2).train()
    teacher_spec = PreprocessSpec(size=24, channels=3)
    task = DistillationTask(teacher, SPEC, teacher_spec, alpha=0.5)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    x, y = batch()
    a, _ = task.loss(student, x, y, torch.Generator())
    a.backward()
    assert teacher.seen[-1] == (8, 3, 24, 24) and student.seen[-1] == (8, 1, 16, 16)
    assert teacher.fc.weight.grad is None and student.fc.weight.grad is not None
    b, _ = task.loss(student.eval(), x, y, torch.Generator())
    c, _ = task.loss(student, x, y, torch.Generator())
    assert b.item() == c.item()  # teacher dropout is off: its targets are deterministic


def test_bad_alpha_or_temperature_is_a_config_error():
    with pytest.raises(ConfigError, match="alpha"):
        DistillationTask(Linear(256), SPEC, SPEC, alpha=1.5)
    with pytest.raises(ConfigError, match="temperature"):
        DistillationTask(Linear(256), SPEC, SPEC, temperature=0)


def test_cli_distill_writes_a_student_from_a_teacher_with_other_preprocessing(
    tiny_checkpoint, fer2013_csv, tmp_path, capsys
):
    out = tmp_path / "student"
    # the teacher is 48x48 grayscale; the student keeps the default 64x64 RGB preprocessing
    assert (
        main(
            [
                "distill",
                "--teacher",
                str(tiny_checkpoint),
                "--arch",
                "resemotenet_s",
                "--data",
                f"fer2013:{fer2013_csv}",
                "--epochs",
                "1",
                "--limit",
                "32",
                "--batch-size",
                "16",
                "--alpha",
                "0.7",
                "--temperature",
                "3",
                "--output",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "epoch 1/1" in capsys.readouterr().out
    _, meta, extra = load_checkpoint(out / "best.pt")
    assert meta["model"] == "resemotenet_s" and meta["preprocess"]["size"] == 64
    cfg = json.loads(extra["config"])
    assert cfg["teacher"] == str(tiny_checkpoint)
    assert (cfg["distill_alpha"], cfg["distill_temperature"]) == (0.7, 3.0)


def test_cli_distill_refuses_a_teacher_with_other_labels(fer2013_csv, tmp_path, capsys):
    teacher = create_model("resemotenet_s", num_classes=8, in_chans=1, width=0.125)
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    path = save_model(
        tmp_path / "t8.pt",
        teacher,
        make_meta("resemotenet_s", {"num_classes": 8, "in_chans": 1, "width": 0.125}, spec, EMOTIONS8),
    )
    assert (
        main(
            [
                "distill",
                "--teacher",
                str(path),
                "--data",
                f"fer2013:{fer2013_csv}",
                "--epochs",
                "1",
                "--limit",
                "16",
                "--batch-size",
                "8",
                "--output",
                str(tmp_path / "s"),
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "t8.pt: teacher labels" in err[0] and "contempt" in err[0]
