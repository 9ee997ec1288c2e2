"""The remote HTTP endpoint backend: options, protocols, clients and auth (the transport of a
network session; the load scenarios that drive it live in :mod:`tippingpoint.harness.network`)."""

from tippingpoint.backends.http.backend import HttpBackend, HttpOptions, HttpSession

__all__ = ["HttpBackend", "HttpOptions", "HttpSession"]
