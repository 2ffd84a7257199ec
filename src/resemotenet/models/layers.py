"""Building blocks of ResEmoteNet, with the official attribute names (so released weights load)."""

from __future__ import annotations

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


class ResidualBlock(nn.Module):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN, plus a conv1x1(stride)-BN shortcut, then ReLU.

    With ``residual=False`` the shortcut is removed (an ablation of the paper's claim), which
    leaves a plain two-convolution block with the same main path.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, residual: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1)
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
