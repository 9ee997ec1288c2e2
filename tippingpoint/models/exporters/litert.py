"""torch -> LiteRT ``.tflite`` with litert-torch (no TensorFlow); fp32 graphs only here.

fp16 and int8 variants are derived from the fp32 file by :mod:`tippingpoint.models.quantization`
(ai-edge-quantizer), as the LiteRT tool chain intends.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

SIGNATURE = "serving_default"
"""The signature key litert-torch gives the single exported signature."""


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the converter: progress lines on stdout/stderr (Python and fd level), warnings."""
    sink = io.StringIO()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with (
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def export_fp32(
    model: nn.Module, example: Sequence[torch.Tensor], input_names: Sequence[str], path: Path
) -> None:
    """Convert ``model`` (eval mode, static batch 1) to an fp32 ``.tflite`` at ``path``.

    Inputs are passed by keyword so the signature's input names are ``input_names``.
    """
    import litert_torch

    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = dict(zip(input_names, example, strict=True))
    with quiet():
        edge = litert_torch.convert(model.eval(), sample_kwargs=kwargs)
        edge.export(str(path))
