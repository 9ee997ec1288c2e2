"""Collector lookup through the ``tippingpoint.collectors`` entry-point group."""

from __future__ import annotations

from tippingpoint.errors import InvalidOptionError
from tippingpoint.harness.collectors.base import Collector
from tippingpoint.plugins import plugin_entry_points

GROUP = "tippingpoint.collectors"


def collector_names() -> list[str]:
    """Names of all registered collectors, sorted."""
    return sorted(plugin_entry_points(GROUP))


def get_collector(name: str) -> type[Collector]:
    """The collector class registered as ``name``; an unknown name is a UsageError."""
    eps = plugin_entry_points(GROUP)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise InvalidOptionError(f"unknown collector '{name}'", f"registered collectors: {known}")
    return eps[name].load()  # type: ignore[no-any-return]
