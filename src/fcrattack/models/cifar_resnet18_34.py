"""ResNet-18/34 adapted to 32x32 CIFAR inputs (3x3 stem, no max-pool), as used by the FCR paper.

Grad-CAM layer: ``layer4`` (512 x 4 x 4 for a 32x32 input).
Input: normalised (N, 3, 32, 32); output: logits (N, num_classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cifar_resnet import BasicBlock


class CifarResNetB(nn.Module):
    """ResNet-18 (blocks 2,2,2,2) or ResNet-34 (3,4,6,3) with projection shortcuts."""

    BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

    def __init__(self, depth: int, num_classes: int = 10) -> None:
        super().__init__()
        if depth not in self.BLOCKS:
            raise ValueError(f"ResNet depth must be 18 or 34, got {depth}")
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        planes, in_planes, stages = 64, 64, []
        for i, n in enumerate(self.BLOCKS[depth]):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(in_planes, planes, stride, option="B")]
            blocks += [BasicBlock(planes, planes, option="B") for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            in_planes, planes = planes, planes * 2
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))
