"""Objectives the generic trainer runs: plain classification and knowledge distillation."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..config import PreprocessSpec
from ..data.transforms import respec
from ..utils.errors import ConfigError


class ClassificationTask:
    """Cross-entropy with optional label smoothing, class weights, soft targets and mixup."""

    def __init__(self, label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None, mixup: float = 0.0):
        self.label_smoothing = label_smoothing
        self.class_weights = class_weights
        self.mixup = mixup

    def targets(self, y: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Hard labels (B,) or soft vote distributions (B, C) -> probability targets (B, C)."""
        t = F.one_hot(y, num_classes).float() if y.dim() == 1 else y.float()
        if self.label_smoothing > 0:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / num_classes
        return t

    def mix(self, x: torch.Tensor, t: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mixup <= 0:
            return x, t
        lam = float(torch.distributions.Beta(self.mixup, self.mixup).sample())
        perm = torch.randperm(x.shape[0], generator=gen)
        return lam * x + (1 - lam) * x[perm], lam * t + (1 - lam) * t[perm]

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.targets(y, _num_classes(model))
        x, t = self.mix(x, t, gen)
        logits = model(x)
        return self.cross_entropy(logits, t), logits

    def cross_entropy(self, logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy against probability targets, weighted per class when asked."""
        per = -(t * F.log_softmax(logits.float(), dim=1))
        if self.class_weights is not None:
            per = per * self.class_weights.to(per.device)
        return per.sum(1).mean()


class DistillationTask(ClassificationTask):
    """Hinton et al. 2015: (1 - alpha) * CE(labels) + alpha * T^2 * KL(teacher_T || student_T).

    The frozen teacher sees the same augmented batch, converted to its own preprocessing.
    """

    def __init__(
        self,
        teacher: nn.Module,
        student_spec: PreprocessSpec,
        teacher_spec: PreprocessSpec,
        alpha: float = 0.5,
        temperature: float = 4.0,
        **kw,
    ):
        super().__init__(**kw)
        if not 0.0 <= alpha <= 1.0 or temperature <= 0:
            raise ConfigError(
                f"distillation needs 0 <= alpha <= 1 and temperature > 0, got alpha={alpha}, temperature={temperature}"
            )
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.student_spec, self.teacher_spec = student_spec, teacher_spec
        self.alpha, self.temperature = alpha, temperature

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.targets(y, _num_classes(model))
        x, t = self.mix(x, t, gen)
        with torch.no_grad():
            teacher_logits = self.teacher(respec(x, self.student_spec, self.teacher_spec)).float()
        logits = model(x)
        ce = self.cross_entropy(logits, t)
        tau = self.temperature
        kl = (
            F.kl_div(
                F.log_softmax(logits.float() / tau, 1),
                F.log_softmax(teacher_logits / tau, 1),
                reduction="batchmean",
                log_target=True,
            )
            * tau
            * tau
        )
        return (1 - self.alpha) * ce + self.alpha * kl, logits


def _num_classes(model: nn.Module) -> int:
    return getattr(model, "module", model).num_classes
