"""Shared fixtures: small real models here; real reports (reports_fixtures.py) and real HTTP
servers (http_helpers.py) through the plugin modules below.

Helpers that are not fixtures live in tests/helpers.py; no test imports a fixture by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tippingpoint.models.registry import ModelRef, resolve_model

pytest_plugins = ["tests.reports_fixtures", "tests.http_helpers"]


@pytest.fixture
def mlp() -> ModelRef:
    return resolve_model("mlp-tiny")


@pytest.fixture
def conv() -> ModelRef:
    return resolve_model("conv-small")


@pytest.fixture
def corrupt_onnx(tmp_path: Path) -> Path:
    """The first half of a real model file: a truncated download."""
    data = resolve_model("mlp-tiny").path.read_bytes()
    path = tmp_path / "broken.onnx"
    path.write_bytes(data[: len(data) // 2])
    return path
