"""``ae-anomaly``: MLPerf Tiny's dense autoencoder for machine-sound anomaly detection."""

from __future__ import annotations

import itertools

import torch
from torch import nn


def _dense(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU()]


class DenseAutoencoder(nn.Module):
    """640 values (5 frames x 128 log-mel bins) -> 4x128 -> 8 -> 4x128 -> 640 reconstruction."""

    def __init__(self, features: int = 640, hidden: int = 128, bottleneck: int = 8) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        widths = [features, hidden, hidden, hidden, hidden, bottleneck]
        widths += [hidden, hidden, hidden, hidden]
        for cin, cout in itertools.pairwise(widths):
            layers += _dense(cin, cout)
        layers.append(nn.Linear(hidden, features))
        self.net = nn.Sequential(*layers)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """The reconstruction of each input row."""
        y: torch.Tensor = self.net(frames)
        return y
