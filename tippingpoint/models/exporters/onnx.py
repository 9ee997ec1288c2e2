"""torch -> ONNX: fp32 through the TorchScript exporter, fp16 by converting the fp32 graph."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

OPSET = 17
"""ONNX opset of every exported model (supported by ONNX Runtime >= 1.14 and its quantiser)."""


def export_fp32(
    model: nn.Module,
    example: Sequence[torch.Tensor],
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
) -> None:
    """Export ``model`` (eval mode) to an fp32 ONNX file at ``path``, batch dimension dynamic.

    The first dimension of every input and output is named ``batch`` so the offline scenario
    can batch on ONNX Runtime (CPU, CUDA, TensorRT). The TorchScript exporter (``dynamo=False``)
    needs no onnxscript and gives byte-identical files for the same weights.
    """
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            model.eval(),
            tuple(example),
            str(path),
            dynamo=False,
            input_names=list(input_names),
            output_names=list(output_names),
            opset_version=OPSET,
            do_constant_folding=True,
            dynamic_axes={name: {0: "batch"} for name in (*input_names, *output_names)},
        )


def convert_fp16(src: Path, dst: Path) -> None:
    """Write an fp16 copy of an fp32 ONNX model: fp16 weights and compute, fp32 inputs/outputs.

    Uses the float16 converter that ships inside ONNX Runtime (``keep_io_types=True`` adds
    casts at the edges so callers feed the same float32 arrays as to the fp32 model).
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        half = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, str(dst))
