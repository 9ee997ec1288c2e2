"""The remote HTTP endpoint backend: protocols, client, auth and network scenarios."""

from tippingpoint.backends.http.backend import HttpBackend, HttpOptions, HttpSession

__all__ = ["HttpBackend", "HttpOptions", "HttpSession"]
