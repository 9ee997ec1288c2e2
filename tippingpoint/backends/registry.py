"""Backend lookup through the ``tippingpoint.backends`` entry-point group.

Built-in backends are registered in our own ``pyproject.toml`` exactly as a third party would
register theirs; nothing here imports a runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from tippingpoint.backends.base import Availability, Backend
from tippingpoint.errors import UnknownBackendError
from tippingpoint.plugins import plugin_entry_points

GROUP = "tippingpoint.backends"


@dataclass(frozen=True)
class BackendListing:
    """One registered backend and whether its runtime is installed."""

    name: str
    target: str
    formats: tuple[str, ...]
    availability: Availability


def backend_names() -> list[str]:
    """Names of all registered backends, sorted."""
    return sorted(plugin_entry_points(GROUP))


def get_backend(name: str) -> type[Backend]:
    """The backend class registered as ``name``; an unknown name is a UsageError."""
    eps = plugin_entry_points(GROUP)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise UnknownBackendError(
            f"unknown backend '{name}'",
            f"registered backends: {known}; run 'tippingpoint backends' to list them",
        )
    cls = eps[name].load()
    return cls  # type: ignore[no-any-return]


def list_backends() -> list[BackendListing]:
    """Every registered backend with its availability, without importing any runtime."""
    out: list[BackendListing] = []
    for name, ep in sorted(plugin_entry_points(GROUP).items()):
        cls = ep.load()
        backend = cls()
        out.append(BackendListing(name, ep.value, tuple(backend.formats), backend.availability()))
    return out
