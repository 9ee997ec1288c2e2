"""Entry-point lookup shared by the backend and collector registries."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points


def plugin_entry_points(group: str) -> dict[str, EntryPoint]:
    """The entry points of ``group`` by name; the first registration of a name wins."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found
