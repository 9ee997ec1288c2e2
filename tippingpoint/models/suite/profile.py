"""Parameter and multiply-accumulate counts of a suite model (imports torch)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Trainable and frozen parameters (BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, example: Sequence[torch.Tensor]) -> int:
    """Multiply-accumulates of one forward pass on ``example``.

    Counts convolutions (output elements x input channels per group x kernel area), linear
    layers (output elements x input features) and, through a module's ``matmul_macs(seq_len)``,
    weight-free attention matmuls. Normalisation, activations and pooling are not counted,
    as is usual for MAC figures.
    """
    total = 0

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += out.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += out.numel() * module.in_features
        elif callable(matmul_macs := getattr(module, "matmul_macs", None)):
            total += int(matmul_macs(args[0].shape[1])) * args[0].shape[0]

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model.eval()(*example)
    finally:
        for h in handles:
            h.remove()
    return total
