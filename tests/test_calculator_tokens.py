"""The token calculator (calculator/tokens.py) on a hand-worked example, and ``tippingpoint cost``
on generative reports.

Hand-worked: a 1,200 USD device living one year (no residual, maintenance, operations or idle
power, planned at full load) serving 100 output tokens/s at 0.5 J a token, electricity at
0.20 USD/kWh. At 8.64 M tokens a day it is exactly one device: 1200/365 = 3.2877 USD of capital
a day and 8.64e6 x 0.5 J = 1.2 kWh = 0.24 USD of energy, 3.5277 USD a day, 0.40830 USD and
0.5 MJ per million output tokens. The API charges 1 USD per million input and 2 per million
output tokens; the runs sent 3 prompt tokens per output token, so 2 + 3 x 1 = 5 USD per
million output tokens, and the edge is no dearer from 3.2877 / (5e-6 - 0.5 x 0.2 / 3.6e6)
= 661,209 tokens a day. The instance (1 USD/h, planned at half load) serves what the endpoint
run's goodput carried: 20 good requests/s x 10 tokens = 200 tokens/s, so one instance holds
8.64 M tokens a day at half load: 24 USD a day, 2.7778 USD and 70 W x 1.1 x 86,400 s / 8.64
= 770 kJ per million tokens (estimated from the profile).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.calculator_factory import edge_report, hand_cloud, hand_profiles, sourced
from tippingpoint.calculator.tokens import PlacementKind, token_costs
from tippingpoint.cli import main
from tippingpoint.core.io import write_report
from tippingpoint.core.schema import (
    GenerationResults,
    Goodput,
    LatencyStats,
    MeasurementMethod,
    Report,
    Slo,
    TokenCounts,
    TokenMetrics,
)
from tippingpoint.core.types import BackendDescription, Device
from tippingpoint.profiles.schema import CloudKind, CloudProfile

V = 8.64e6


def _stats(ms: float) -> LatencyStats:
    return LatencyStats(
        count=100, min=ms, max=ms, mean=ms, std=0, p50=ms, p90=ms, p95=ms, p99=ms, p999=ms
    )


def generative(
    report: Report,
    *,
    tokens_per_s: float,
    goodput_rps: float | None = None,
    joules: float | None = None,
    remote: bool = False,
) -> Report:
    """``report`` as a generative run: 100 requests of 10 output and 30 prompt tokens."""
    slo = Slo(ttft_ms=100)
    metrics = TokenMetrics(
        origin="scheduled send time",
        requests=100,
        succeeded=100,
        failed={},
        duration_s=10.0,
        ttft=_stats(20),
        tpot=_stats(5),
        e2el=_stats(65),
        chunk_gap=_stats(5),
        output_tokens=1000,
        prompt_tokens=3000,
        output_tokens_per_s=tokens_per_s,
        total_tokens_per_s=4 * tokens_per_s,
        requests_per_s=tokens_per_s / 10,
        tokens_per_chunk=1.0,
        multi_token_chunks=False,
        token_counts=TokenCounts(
            server_total=1000, client_total=1000, compared=100, differing=0, difference=0
        ),
        goodput=None
        if goodput_rps is None
        else Goodput(slo=slo, good=100, requests_per_s=goodput_rps, good_fraction=1.0),
    )
    gen = GenerationResults(
        metrics=metrics,
        prompts="synthetic",
        max_tokens_mean=10,
        ignore_eos=True,
        joules_per_output_token=joules,
        energy_method=MeasurementMethod.COUNTER if joules is not None else None,
    )
    update: dict[str, object] = {"generation": gen}
    if remote:
        update["backend"] = BackendDescription(
            name="openai", runtime="aiohttp", runtime_version="3", device=Device.REMOTE
        )
        update["run_id"] = "cloudgen0000"
    else:
        update["model"] = report.model.model_copy(update={"name": "tiny-llm"})
    return report.model_copy(update=update)


def api() -> CloudProfile:
    return CloudProfile(
        name="tokens",
        kind=CloudKind.API,
        price_per_million_input_tokens=sourced(1.0),
        price_per_million_output_tokens=sourced(2.0),
    )


def test_hand_worked_per_million_and_tipping_point() -> None:
    p = hand_profiles()
    edge = generative(edge_report(10, 50), tokens_per_s=100, joules=0.5)
    cloud = generative(edge_report(10, 50), tokens_per_s=150, goodput_rps=20, remote=True)
    result = token_costs(
        edge,
        p.device,
        p.energy,
        [api(), hand_cloud()],
        output_tokens_per_day=V,
        volume_source="hand",
        cloud_report=cloud,
    )
    dev, tok, inst = result.placements
    assert dev.kind is PlacementKind.EDGE and dev.units == 1
    assert dev.usd_per_day == pytest.approx(1200 / 365 + 0.24)
    assert dev.usd_per_million_output_tokens == pytest.approx((1200 / 365 + 0.24) / 8.64)
    assert dev.joules_per_million_output_tokens == pytest.approx(0.5e6)
    assert dev.energy_method is not None and dev.energy_method.startswith("measured")
    assert result.prompt_to_output_ratio == pytest.approx(3.0)
    assert tok.usd_per_million_output_tokens == pytest.approx(5.0)
    tip = (1200 / 365) / (5e-6 - 0.5 * 0.2 / 3.6e6)
    assert tok.tipping_tokens_per_day == pytest.approx(tip, rel=1e-3)
    assert tok.edge_cheaper_at_volume is True
    assert inst.capacity_output_tokens_per_s == pytest.approx(200.0)  # goodput, not 150/s
    assert inst.units == 1 and inst.usd_per_day == pytest.approx(24.0)
    assert inst.usd_per_million_output_tokens == pytest.approx(24 / 8.64)
    assert inst.joules_per_million_output_tokens == pytest.approx(70 * 1.1 * 86_400 / 8.64)
    assert inst.energy_method is not None and inst.energy_method.startswith("estimated")
    # the edge's capital is below a day of the instance at any volume one device holds
    assert inst.tipping_tokens_per_day == pytest.approx(1.0)


def test_devices_step_up_and_energy_falls_back_to_the_profile() -> None:
    p = hand_profiles()
    edge = generative(edge_report(10, 50), tokens_per_s=100)  # no energy in the report
    result = token_costs(
        edge, p.device, p.energy, [api()], output_tokens_per_day=2.5 * V, volume_source="hand"
    )
    dev, tok = result.placements
    assert dev.units == 3
    # the profile's 10 active watts over 100 tokens/s: 0.1 J a token, labelled
    assert dev.joules_per_million_output_tokens == pytest.approx(0.1e6)
    assert dev.energy_method is not None and "active watts" in dev.energy_method
    assert tok.usd_per_million_output_tokens == pytest.approx(5.0)
    assert result.notes == ()


def test_instance_without_an_endpoint_report_is_not_priced() -> None:
    p = hand_profiles()
    edge = generative(edge_report(10, 50), tokens_per_s=100, joules=0.5)
    result = token_costs(
        edge, p.device, p.energy, [hand_cloud()], output_tokens_per_day=V, volume_source="h"
    )
    assert result.placements[1].usd_per_million_output_tokens is None
    assert "capacity is unknown" in result.notes[0]


def test_cost_cli_on_generative_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edge = generative(edge_report(10, 50), tokens_per_s=100, joules=0.5)
    cloud = generative(edge_report(10, 50), tokens_per_s=150, goodput_rps=20, remote=True)
    write_report(edge, tmp_path)
    write_report(cloud, tmp_path)
    out = tmp_path / "tokens.json"
    rc = main(
        [
            "cost",
            "-r",
            str(tmp_path),
            "-d",
            "rpi5",
            "-w",
            "predictive-maintenance",
            "-c",
            "api-openai-gpt-4o-mini",
            "-c",
            "gpu-t4-ondemand",
            "--tokens-per-day",
            "1e6",
            "--json",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads(out.read_text())
    assert doc["output_tokens_per_day"] == 1e6 and doc["volume_source"] == "--tokens-per-day"
    names = [p["name"] for p in doc["placements"]]
    assert names == ["rpi5", "api-openai-gpt-4o-mini", "gpu-t4-ondemand"]
    mini = doc["placements"][1]
    # 0.60 per M output + 3 prompt tokens per output token x 0.15 per M input
    assert mini["usd_per_million_output_tokens"] == pytest.approx(0.60 + 3 * 0.15)
    assert "2024-07-18" in mini["notes"][0]
    assert doc["placements"][2]["capacity_output_tokens_per_s"] == pytest.approx(200.0)


def test_cost_cli_refuses_two_edge_runs(tmp_path: Path) -> None:
    write_report(generative(edge_report(10, 50), tokens_per_s=100), tmp_path)
    write_report(generative(edge_report(20, 50), tokens_per_s=200), tmp_path)
    args = ["cost", "-r", str(tmp_path), "-d", "rpi5", "-w", "predictive-maintenance"]
    assert main([*args, "-c", "api-openai-gpt-4o-mini"]) == 2
