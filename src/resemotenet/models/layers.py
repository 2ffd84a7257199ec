"""Building blocks of ResEmoteNet, with the official attribute names (so released weights load)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class SEBlock(nn.Module):
    """Squeeze-and-Excitation: channel weights from global context (Hu et al. 2018).

    ``fc.0`` and ``fc.2`` are the official key names; there is no skip connection around it.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        w = self.fc(self.avg_pool(x).view(b, c)).view(b, c, 1, 1)  # (B, C, 1, 1)
        return x * w


def live_taps(size: int, kernel: int, stride: int, padding: int) -> tuple[int, int] | None:
    """The kernel taps [lo, hi) that ever touch the input along one axis, when the others only
    ever see zero padding and dropping them (with the padding) leaves every output in place;
    None when every tap is live or the trimmed convolution would not line up."""
    out = (size + 2 * padding - kernel) // stride + 1
    used = [i for i in range(kernel) if any(0 <= o * stride - padding + i < size for o in range(out))]
    if not used or (used[0], used[-1]) == (0, kernel - 1):
        return None
    lo, hi = used[0], used[-1] + 1
    if lo != padding or (out - 1) * stride + (hi - lo) > size or (size - (hi - lo)) // stride + 1 != out:
        return None
    return lo, hi


class Conv2dLiveTaps(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, same state-dict keys) that skips the kernel taps which only
    ever multiply zero padding. ResEmoteNet's last stages run 3x3 convolutions on 2x2 and 1x1
    maps: on a 1x1 map only the centre tap sees the input, so the 2048->2048 convolution is a
    matrix product costing 1/9 of the padded one, and the stride-2 1024->2048 convolution on a
    2x2 map uses 4 of its 9 taps. The result is the same sum without the zero terms (equal to
    float rounding), and the skipped taps get exactly the zero gradient they get anyway.
    Undilated, ungrouped 2-d convolutions with zero padding only; anything else runs as usual."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(x)
        rows = live_taps(x.shape[-2], self.kernel_size[0], self.stride[0], self.padding[0])
        cols = live_taps(x.shape[-1], self.kernel_size[1], self.stride[1], self.padding[1])
        if rows is None and cols is None:
            return super().forward(x)
        (r0, r1), (c0, c1) = rows or (0, self.kernel_size[0]), cols or (0, self.kernel_size[1])
        padding = (0 if rows else self.padding[0], 0 if cols else self.padding[1])
        if (
            self.weight.requires_grad
            and torch.is_grad_enabled()
            and not (torch.jit.is_tracing() or torch.compiler.is_compiling())
        ):
            weight = _LiveTaps.apply(self.weight, r0, r1, c0, c1)
        else:
            weight = self.weight[:, :, r0:r1, c0:c1]
        return F.conv2d(x, weight, self.bias, self.stride, padding, 1, self.groups)


class _LiveTaps(torch.autograd.Function):
    """``weight[:, :, r0:r1, c0:c1]`` whose backward fills the full-size gradient with ``empty`` +
    ``zero_`` rather than autograd's ``new_zeros`` for slices: for the 151 MB 2048x2048x3x3 weight that saves about 3 % of a
    training step on CPU (``benchmarks/train_speed.py``)."""

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        ctx.shape, ctx.taps = weight.shape, (r0, r1, c0, c1)
        return weight[:, :, r0:r1, c0:c1]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        r0, r1, c0, c1 = ctx.taps
        full = grad.new_empty(ctx.shape).zero_()
        full[:, :, r0:r1, c0:c1] = grad
        return full, None, None, None, None


def plain_convs(model: nn.Module) -> set[str]:
    """Turn every ``Conv2dLiveTaps`` of ``model`` into an ``nn.Conv2d`` in place (the parameters
    stay) and return their names, for tools that match layer types exactly (torch.fx's conv-BN
    fusion); ``live_convs`` turns them back."""
    names = {n for n, m in model.named_modules() if type(m) is Conv2dLiveTaps}
    for n in names:
        model.get_submodule(n).__class__ = nn.Conv2d
    return names


def live_convs(model: nn.Module, names: set[str]) -> nn.Module:
    for n in names:
        m = model.get_submodule(n)
        if type(m) is nn.Conv2d:
            m.__class__ = Conv2dLiveTaps
    return model


class ResidualBlock(nn.Module):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN, plus a conv1x1(stride)-BN shortcut, then ReLU.

    With ``residual=False`` the shortcut is removed (an ablation of the paper's claim), which
    leaves a plain two-convolution block with the same main path.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, residual: bool = True):
        super().__init__()
        self.conv1 = Conv2dLiveTaps(in_ch, out_ch, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = Conv2dLiveTaps(out_ch, out_ch, 3, stride=1, padding=1)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module | None = None
        if residual:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride),
                nn.BatchNorm2d(out_ch),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)
