"""The calculator's cost result, read for presentation (``--cost`` of compare and report).

The result is read through the calculator's own pydantic model
(:class:`tippingpoint.calculator.result.CostResult`), imported only when a cost file is given,
so the run-report parts of a report never depend on the calculator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tippingpoint.core.errors import ReportError
from tippingpoint.core.io import too_deep

if TYPE_CHECKING:
    from tippingpoint.calculator.result import CostResult


def read_cost_result(path: Path) -> CostResult:
    """Read and validate a cost result JSON written by ``tippingpoint cost``."""
    try:
        from tippingpoint.calculator.result import read_cost_data
    except ImportError:
        raise ReportError(
            "this tippingpoint has no cost calculator to read --cost files",
            "install a tippingpoint that includes 'tippingpoint cost'",
        ) from None
    from pydantic import ValidationError

    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ReportError(
            f"cannot read cost result {path}: {exc.strerror or exc}", "check the path"
        ) from None
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})",
            "pass a cost result written by 'tippingpoint cost'",
        ) from None
    except RecursionError:
        raise too_deep(str(path), "a cost result written by 'tippingpoint cost'") from None
    if isinstance(data, dict) and "run_id" in data and "scenario" in data:
        raise ReportError(
            f"{path} is a run report of 'tippingpoint run', not a cost result",
            "pass run reports as arguments, and to --cost the JSON written by "
            "'tippingpoint cost --out'",
        )
    try:
        return read_cost_data(data)  # older versions are read upgraded
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ReportError(
            f"{path} is not a valid cost result: '{where}': {err['msg']}", "regenerate it"
        ) from None
    except ValueError as exc:  # a version this tippingpoint does not read
        raise ReportError(
            f"{path} has {exc}", "re-run 'tippingpoint cost' with this version"
        ) from None
