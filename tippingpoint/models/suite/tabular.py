"""``tabular-mlp``: a scoring MLP (fraud / risk style) over 30 standardised features."""

from __future__ import annotations

import torch
from torch import nn


class TabularMLP(nn.Module):
    """30 standardised features -> 64 -> 32 -> 2 logits (benign / malignant)."""

    def __init__(self, features: int = 30, classes: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, 64),
            nn.ReLU(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, classes),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of feature rows."""
        y: torch.Tensor = self.net(features)
        return y
