"""Enumerations used both in reports and at the CLI edge (kept free of pydantic imports)."""

from __future__ import annotations

from enum import Enum


class ScenarioKind(str, Enum):
    """LoadGen-style scenarios; ``server`` and ``concurrency`` are for network backends."""

    SINGLE_STREAM = "single-stream"
    OFFLINE = "offline"
    SERVER = "server"
    CONCURRENCY = "concurrency"
