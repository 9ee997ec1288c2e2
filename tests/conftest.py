"""Shared fixtures: small real models and short scenarios."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tippingpoint.core.schema import ScenarioKind, ScenarioSettings, StopRule, WarmupRule
from tippingpoint.harness.config import scenario_settings
from tippingpoint.models.registry import ModelRef, resolve_model

TINY_WARMUP = WarmupRule(min_queries=3, min_duration_s=0.02)
TINY_STOP = StopRule(min_queries=50, min_duration_s=0.1, max_duration_s=5.0)
TP = [sys.executable, "-m", "tippingpoint"]


def tiny_scenario(
    kind: ScenarioKind = ScenarioKind.SINGLE_STREAM, batch: int = 1
) -> ScenarioSettings:
    """A scenario short enough for unit tests, with the real stop-rule semantics."""
    return scenario_settings(kind, batch, quick=True, warmup=TINY_WARMUP, stop=TINY_STOP)


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
