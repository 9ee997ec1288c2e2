"""tippingpoint: benchmark on-device versus cloud AI inference, and find where it tips."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
