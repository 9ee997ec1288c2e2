"""Typed parsing of a backend's raw options.

Every backend declares its options as a frozen pydantic model; :func:`parse_options` validates
the raw ``--opt``/suite-file values into that model, so a backend gets its own options type
back (not ``Any``) and every bad option is the same one-line usage error. A backend that
inherits :class:`TypedOptions` names its model once and gets ``validate_options`` (the
pre-run check of the :class:`~tippingpoint.backends.base.Backend` protocol) from it.

Usage::

    opts = parse_options(OrtCpuOptions, {"intra_op_threads": 2}, "onnxruntime")
    opts.intra_op_threads   # 2, typed as int

    class MyBackend(TypedOptions[MyOptions]):
        name = "mine"
        options_model = MyOptions

        def load(self, model, options):
            opts = self.parse_options(options)   # a MyOptions
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from tippingpoint.core.errors import InvalidOptionError, OptionValueError
from tippingpoint.core.types import Availability, OptionValue

M = TypeVar("M", bound=BaseModel)


def parse_options(model: type[M], options: Mapping[str, OptionValue], backend: str) -> M:
    """Validate raw options into ``model``; errors name the option and the valid ones."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "?"
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, OptionValueError):  # a bad value whose validator names the fix
            raise InvalidOptionError(
                f"invalid {backend} option '{field}': {cause.problem}", cause.fix
            ) from None
        valid = ", ".join(model.model_fields)
        raise InvalidOptionError(
            f"invalid {backend} option '{field}': {err['msg']}",
            f"valid options: {valid}",
        ) from None


class TypedOptions(Generic[M]):
    """A backend whose options are the pydantic model ``options_model``."""

    name: str
    """The backend's name, as errors quote it."""
    options_model: type[M]
    """The model the raw options validate into."""

    def parse_options(self, options: Mapping[str, OptionValue]) -> M:
        """``options`` validated into ``options_model``; InvalidOptionError when one is bad."""
        return parse_options(self.options_model, options, self.name)

    def validate_options(self, options: Mapping[str, OptionValue]) -> None:
        """Parse ``options`` without loading anything; InvalidOptionError when one is bad."""
        self.parse_options(options)


def module_availability(
    module: str, dists: Sequence[str], runtime: str, install_hint: str
) -> Availability:
    """Whether ``module`` is importable (without importing it) and the version of the first
    installed distribution of ``dists`` that provides it."""
    try:
        installed = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module entry of None, or a broken install
        installed = False
    ver = None
    for dist in dists:
        try:
            ver = version(dist)
            break
        except PackageNotFoundError:
            continue
    return Availability(
        installed=installed, runtime=runtime, version=ver, install_hint=install_hint
    )
