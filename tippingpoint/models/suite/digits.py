"""``digits-cnn``: a small image classifier for scikit-learn's 8x8 digits."""

from __future__ import annotations

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """1x8x8 grey image (pixel / 16) -> two 3x3 convolutions -> pool -> 64 -> 10 logits."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, classes),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images."""
        y: torch.Tensor = self.head(self.features(image))
        return y
