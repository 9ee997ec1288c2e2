"""``ds-cnn-kws``: MLPerf Tiny's depthwise-separable CNN for keyword spotting on 49x10 MFCCs."""

from __future__ import annotations

import torch
from torch import nn


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU()]


class DSCNN(nn.Module):
    """1x49x10 MFCC -> 10x4 conv (64, stride 2) -> 4 depthwise-separable blocks -> 12 logits."""

    def __init__(self, classes: int = 12, filters: int = 64, blocks: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(1, filters, (10, 4), stride=2, padding=(5, 1), bias=False),
            *_bn_relu(filters),
        ]
        for _ in range(blocks):
            layers += [
                nn.Conv2d(filters, filters, 3, padding=1, groups=filters, bias=False),
                *_bn_relu(filters),
                nn.Conv2d(filters, filters, 1, bias=False),
                *_bn_relu(filters),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(filters, classes)
        )

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of MFCC maps."""
        y: torch.Tensor = self.head(self.features(mfcc))
        return y
