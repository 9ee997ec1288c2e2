"""Flag text to typed values: ``--opt KEY=VALUE``, comma lists, ``--arrival``.

Each malformed value is a one-line usage error naming the flag and the expected form.
"""

from __future__ import annotations

from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.schema import ArrivalProcess
from tippingpoint.core.types import OptionValue
from tippingpoint.harness.matrix import BackendOption, options_by_backend


def _coerce(value: str) -> OptionValue:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            continue
    return value


def parse_option(item: str) -> BackendOption:
    """``--opt KEY=VALUE`` is for every backend; ``--opt BACKEND.KEY=VALUE`` for one."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise InvalidOptionError(
            f"cannot parse --opt '{item}'", "write it as KEY=VALUE or BACKEND.KEY=VALUE"
        )
    target, dot, name = key.rpartition(".")
    if dot:
        return BackendOption(key=name, value=_coerce(value), backend=target)
    return BackendOption(key=key, value=_coerce(value))


def parse_backend_options(
    items: list[str], backends: list[str]
) -> dict[str, dict[str, OptionValue]]:
    """Each backend's options from ``--opt`` flags; naming another backend is a usage error."""
    return options_by_backend([parse_option(i) for i in items], backends)


def positive_ints(text: str, flag: str, example: str) -> tuple[int, ...]:
    """``1,8,32`` as a tuple of positive integers; anything else names ``flag``."""
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise InvalidOptionError(f"invalid {flag} '{text}'", example)
    return values


def parse_arrival(text: str) -> ArrivalProcess:
    """``poisson``, ``constant`` or ``gamma``."""
    try:
        return ArrivalProcess(text)
    except ValueError:
        raise InvalidOptionError(
            f"unknown --arrival '{text}'", "use --arrival poisson, constant or gamma"
        ) from None
