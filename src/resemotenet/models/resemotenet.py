"""ResEmoteNet (Roy et al., IEEE SPL 2024, arXiv 2409.10545), exactly as the official code.

| stage      | layers                                            | out (64x64 input) |
|------------|---------------------------------------------------|-------------------|
| stem 1     | conv3x3 3->64, BN, ReLU, maxpool2, dropout 0.2    | 64 x 32 x 32      |
| stem 2     | conv3x3 64->128, BN, ReLU, maxpool2, dropout 0.2  | 128 x 16 x 16     |
| stem 3     | conv3x3 128->256, BN, ReLU, maxpool2              | 256 x 8 x 8       |
| se         | SE(256, reduction 16)                             | 256 x 8 x 8       |
| res 1..3   | residual blocks 256->512->1024->2048, stride 2    | 2048 x 1 x 1      |
| head       | avgpool, fc 2048->1024->512->256 (ReLU, drop 0.5), fc 256->classes |      |

``width`` scales every channel count (0.25 gives the compact ``resemotenet_s``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import ResidualBlock, SEBlock


class ResEmoteNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 3,
        *,
        width: float = 1.0,
        se: bool = True,
        residual: bool = True,
        drop_stem: float = 0.2,
        drop_head: float = 0.5,
    ):
        super().__init__()
        c = [max(1, int(round(ch * width))) for ch in (64, 128, 256, 512, 1024, 2048)]
        h = [max(1, int(round(ch * width))) for ch in (1024, 512, 256)]
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = c[5]
        self.conv1 = nn.Conv2d(in_chans, c[0], 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.conv2 = nn.Conv2d(c[0], c[1], 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c[1])
        self.conv3 = nn.Conv2d(c[1], c[2], 3, padding=1)
        self.bn3 = nn.BatchNorm2d(c[2])
        self.relu = nn.ReLU(inplace=True)
        self.se = SEBlock(c[2]) if se else nn.Identity()
        self.res_block1 = ResidualBlock(c[2], c[3], stride=2, residual=residual)
        self.res_block2 = ResidualBlock(c[3], c[4], stride=2, residual=residual)
        self.res_block3 = ResidualBlock(c[4], c[5], stride=2, residual=residual)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(c[5], h[0])
        self.fc2 = nn.Linear(h[0], h[1])
        self.fc3 = nn.Linear(h[1], h[2])
        self.dropout1 = nn.Dropout(drop_stem)
        self.dropout2 = nn.Dropout(drop_head)
        self.fc4 = nn.Linear(h[2], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout1(F.max_pool2d(self.relu(self.bn1(self.conv1(x))), 2))  # C0 x H/2
        x = self.dropout1(F.max_pool2d(self.relu(self.bn2(self.conv2(x))), 2))  # C1 x H/4
        x = F.max_pool2d(self.relu(self.bn3(self.conv3(x))), 2)  # C2 x H/8
        x = self.se(x)
        x = self.res_block1(x)  # C3 x H/16
        x = self.res_block2(x)  # C4 x H/32
        return self.res_block3(x)  # C5 x H/64

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.pool(x), 1)  # (B, C5)
        x = self.dropout2(self.relu(self.fc1(x)))
        x = self.dropout2(self.relu(self.fc2(x)))
        x = self.dropout2(self.relu(self.fc3(x)))
        return x if pre_logits else self.fc4(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
