"""torch -> ``.pt2``: a ``torch.export`` program for the torch backend, fp32 with a dynamic batch.

Only fp32 is written: fp16 and bf16 are runtime options of the torch backend
(``--opt torch.dtype=fp16``), which casts the loaded fp32 program, so they need no file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

MAX_BATCH = 4096
"""Upper bound of the exported symbolic batch dimension."""


def export_fp32(model: nn.Module, example: Sequence[torch.Tensor], path: Path) -> None:
    """``torch.export`` ``model`` (eval mode) and save it to ``path``, batch dimension dynamic.

    The first dimension of every input is the symbolic ``batch`` (1..MAX_BATCH), so the
    offline scenario can batch on the torch backend as on ONNX Runtime. ``example`` must have
    a batch of at least 2 (torch.export specialises a dimension traced at size 1).

    The archive is byte-reproducible for the same weights, example and file name: its zip
    entries carry fixed timestamps and its serialization id is derived from the contents, but
    the folder inside the archive is named after the file's stem, so the name must match too.
    """
    import torch

    if any(t.shape[0] < 2 for t in example):
        raise ValueError("the example needs a batch of at least 2 to export a dynamic batch")
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    dynamic = tuple({0: batch} for _ in example)
    program = torch.export.export(model.eval(), tuple(example), dynamic_shapes=dynamic)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path))
