"""The hybrid backend (a local backend and a remote endpoint with a routing policy) and its
policy plugins."""

from tippingpoint.backends.hybrid.backend import HybridBackend

__all__ = ["HybridBackend"]
