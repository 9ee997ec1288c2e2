"""Build torch modules from :mod:`tests.tflite_build` layers and save them as .pt2 / .onnx files."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.tflite_build import Dense


def torch_mlp(layers: Sequence[Dense]) -> Any:
    """An eval-mode ``nn.Sequential`` computing exactly ``tflite_build.forward(layers, x)``."""
    import torch
    from torch import nn

    modules: list[nn.Module] = []
    for layer in layers:
        linear = nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.weight))
            linear.bias.copy_(torch.from_numpy(layer.bias))
        modules.append(linear)
        if layer.relu:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).eval()


def export_pt2(path: Path, layers: Sequence[Dense], *, dynamic_batch: bool = True) -> Path:
    """``torch.export`` the MLP (batch dimension dynamic or fixed at 1) to ``path``."""
    import torch

    module = torch_mlp(layers)
    example = (torch.zeros(2 if dynamic_batch else 1, layers[0].weight.shape[1]),)
    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    program = torch.export.export(module, example, dynamic_shapes=dynamic)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path))
    return path


def export_onnx(path: Path, layers: Sequence[Dense]) -> Path:
    """The same MLP as ONNX with a dynamic batch (TorchScript exporter, opset 17)."""
    import torch

    module = torch_mlp(layers)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, layers[0].weight.shape[1]),),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
        )
    return path
