"""Backend lookup through the ``tippingpoint.backends`` entry-point group.

Built-in backends are registered in our own ``pyproject.toml`` exactly as a third party would
register theirs; nothing here imports a runtime. A third-party entry point that fails to load
(missing module, import error) is listed as not installed with the cause as its hint, and
asking for it by name is a one-line ``RuntimeNotInstalledError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tippingpoint.backends.base import Backend
from tippingpoint.core.errors import RuntimeNotInstalledError, UnknownBackendError
from tippingpoint.core.plugins import (
    PluginLoadError,
    broken_plugin_hint,
    distribution_name,
    load_entry_point,
    plugin_entry_points,
)
from tippingpoint.core.types import Availability

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
    """The backend class registered as ``name``.

    An unknown name is an UnknownBackendError (usage, exit 2); a registered plugin that fails
    to load is a RuntimeNotInstalledError naming the cause (exit 1).
    """
    eps = plugin_entry_points(GROUP)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise UnknownBackendError(
            f"unknown backend '{name}'",
            f"registered backends: {known}; run 'tippingpoint backends' to list them",
        )
    ep = eps[name]
    try:
        cls = load_entry_point(ep)
    except PluginLoadError as exc:
        raise RuntimeNotInstalledError(
            f"backend {str(exc).removeprefix('plugin ')}", broken_plugin_hint(ep)
        ) from exc
    conforms = isinstance(cls, Backend)  # the class declares every member of the interface
    if not conforms:
        raise RuntimeNotInstalledError(
            f"backend {name}: {ep.value} does not implement the backend interface",
            "give it name, formats, network, availability(), validate_options(options) and "
            "load(model, options), as tippingpoint.backends.base.Backend declares",
        )
    return cls  # type: ignore[no-any-return]


def list_backends() -> list[BackendListing]:
    """Every registered backend with its availability, without importing any runtime.

    A plugin that fails to load, construct or report its availability is listed as not
    installed, with the error and the fix as its install hint.
    """
    out: list[BackendListing] = []
    for name, ep in sorted(plugin_entry_points(GROUP).items()):
        try:
            backend = load_entry_point(ep)()
            listing = BackendListing(name, ep.value, tuple(backend.formats), backend.availability())
        except Exception as exc:  # a broken third-party plugin must not break the listing
            cause = str(exc) if isinstance(exc, PluginLoadError) else f"{type(exc).__name__}: {exc}"
            broken = Availability(
                installed=False,
                runtime=distribution_name(ep) or ep.value,
                install_hint=" ".join(f"broken plugin: {cause}; {broken_plugin_hint(ep)}".split()),
            )
            listing = BackendListing(name, ep.value, (), broken)
        out.append(listing)
    return out
