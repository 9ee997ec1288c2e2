"""Collector lookup through the ``tippingpoint.collectors`` entry-point group.

A third-party entry point that fails to load is reported as ``CollectorUnavailable`` with the
cause and the fix, so ``tippingpoint collectors`` lists it as unavailable and a run records it
as skipped instead of crashing.
"""

from __future__ import annotations

from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.plugins import (
    PluginLoadError,
    broken_plugin_hint,
    load_entry_point,
    plugin_entry_points,
)
from tippingpoint.harness.collectors.base import CollectorFactory, CollectorUnavailable

GROUP = "tippingpoint.collectors"


def collector_names() -> list[str]:
    """Names of all registered collectors, sorted."""
    return sorted(plugin_entry_points(GROUP))


def get_collector(name: str) -> CollectorFactory:
    """The collector class registered as ``name``, which builds collectors from options.

    An unknown name is a UsageError; a registered plugin that fails to load, or that is not a
    :class:`CollectorFactory` (no ``from_options``), raises CollectorUnavailable naming the
    cause and the fix.
    """
    eps = plugin_entry_points(GROUP)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise InvalidOptionError(f"unknown collector '{name}'", f"registered collectors: {known}")
    ep = eps[name]
    try:
        factory = load_entry_point(ep)
    except PluginLoadError as exc:
        reason = f"collector {str(exc).removeprefix('plugin ')}; {broken_plugin_hint(ep)}"
        raise CollectorUnavailable(reason) from exc
    if not isinstance(factory, CollectorFactory):
        raise CollectorUnavailable(
            f"{name}: {ep.value} has no from_options(options) classmethod; derive it from "
            "tippingpoint.harness.collectors.base.CollectorBase"
        )
    return factory
