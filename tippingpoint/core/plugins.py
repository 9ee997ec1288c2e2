"""Entry-point lookup shared by the backend and collector registries.

A third-party distribution can register an entry point whose module is missing or raises on
import; :func:`load_entry_point` turns any such failure into a :class:`PluginLoadError` whose
message names the entry point, its target, its distribution and the cause, so the registries
can list the plugin as broken and ``run`` can fail with one line instead of a traceback.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any


class PluginLoadError(Exception):
    """A registered entry point could not be loaded; the message says which and why."""


def plugin_entry_points(group: str) -> dict[str, EntryPoint]:
    """The entry points of ``group`` by name; the first registration of a name wins."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found


def distribution_name(ep: EntryPoint) -> str | None:
    """The name of the distribution that registered ``ep``, when known."""
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return str(name) if name else None


def load_entry_point(ep: EntryPoint) -> Any:
    """Import the object ``ep`` names; any failure is a PluginLoadError naming the cause."""
    try:
        return ep.load()
    except Exception as exc:  # a broken plugin can raise anything on import
        dist = distribution_name(ep)
        source = f" from distribution '{dist}'" if dist else ""
        cause = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise PluginLoadError(
            f"plugin '{ep.name}' ({ep.value}){source} failed to load: {cause}"
        ) from exc


def broken_plugin_hint(ep: EntryPoint) -> str:
    """The fix for a plugin that fails to load: reinstall or remove its distribution."""
    dist = distribution_name(ep) or "the distribution that registers it"
    return f"reinstall or uninstall {dist}"
