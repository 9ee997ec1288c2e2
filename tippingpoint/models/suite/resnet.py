"""ResNets: ``resnet8`` (MLPerf Tiny image classification, 32x32x3) and ``resnet50`` (224x224x3)."""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    """A body with a residual connection (1x1 projection when the shape changes), then ReLU."""

    def __init__(self, body: nn.Sequential, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = body
        self.shortcut: nn.Module = (
            nn.Identity() if stride == 1 and cin == cout else _conv_bn(cin, cout, 1, stride, False)
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum, then ReLU."""
        y: torch.Tensor = self.relu(self.body(x) + self.shortcut(x))
        return y


class BasicBlock(_Residual):
    """Two 3x3 convolutions with a residual connection (1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        body = nn.Sequential(_conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout, 3, relu=False))
        super().__init__(body, cin, cout, stride)


class ResNet8(nn.Module):
    """MLPerf Tiny's IC ResNet: a 16-filter stem, three basic blocks (16, 32, 64), 10 logits."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 16, 3)
        self.blocks = nn.Sequential(
            BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2)
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of 3x32x32 images."""
        y: torch.Tensor = self.head(self.blocks(self.stem(image)))
        return y


class Bottleneck(_Residual):
    """1x1 reduce, 3x3, 1x1 expand (x4), with a residual connection."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        cout = width * 4
        body = nn.Sequential(
            _conv_bn(cin, width, 1),
            _conv_bn(width, width, 3, stride),
            _conv_bn(width, cout, 1, relu=False),
        )
        super().__init__(body, cin, cout, stride)


class ResNet50(nn.Module):
    """ResNet-50 v1.5 (stride on the 3x3), 224x224x3 -> 1000 logits."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
        layers: list[nn.Module] = []
        cin = 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(blocks):
                layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of 3x224x224 images."""
        y: torch.Tensor = self.head(self.blocks(self.stem(image)))
        return y
