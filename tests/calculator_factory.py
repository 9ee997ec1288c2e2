"""Report objects for calculator tests: the committed v1 fixture, with the figures replaced."""

from __future__ import annotations

import json
from pathlib import Path

from tippingpoint.backends.base import BackendDescription, Device
from tippingpoint.reports.schema import (
    EnergySummary,
    HttpResults,
    LatencyStats,
    MeasurementMethod,
    Report,
    ScenarioKind,
)

FIXTURE = Path(__file__).parent / "fixtures" / "report_v1.json"


def _base() -> Report:
    data = json.loads(FIXTURE.read_text())
    data["digest"] = None
    return Report.model_validate(data)


def latency(p99: float, p50: float | None = None) -> LatencyStats:
    """Latency stats with the given p99 (ms); the other figures consistent with it."""
    mid = p50 if p50 is not None else p99 / 2
    return LatencyStats(
        count=1000,
        min=mid / 2,
        max=p99 * 1.5,
        mean=mid,
        std=mid / 4,
        p50=mid,
        p90=p99 * 0.8,
        p95=p99 * 0.9,
        p99=p99,
        p999=p99 * 1.2,
    )


def edge_report(
    throughput: float,
    p99_ms: float,
    *,
    joules: float | None = None,
    batch: int = 1,
    model: str = "mlp-tiny",
    method: MeasurementMethod = MeasurementMethod.COUNTER,
    idle_watts: float | None = None,
) -> Report:
    """An on-device report: throughput in inferences/s, p99 in ms, optional J/inference."""
    base = _base()
    assert base.results is not None
    queries_per_s = throughput / batch
    results = base.results.model_copy(
        update={
            "latency": latency(p99_ms),
            "throughput": base.results.throughput.model_copy(
                update={"queries_per_s": queries_per_s, "samples_per_s": throughput}
            ),
            "stability": None,
        }
    )
    energy = None
    if joules is not None:
        energy = EnergySummary(
            source="/sys/class/powercap/intel-rapl:0",
            method=method,
            scope="cpu-package",
            joules_per_inference=joules,
            idle_watts_before=idle_watts,
            idle_watts_after=idle_watts,
        )
    kind = ScenarioKind.SINGLE_STREAM if batch == 1 else ScenarioKind.OFFLINE
    return base.model_copy(
        update={
            "results": results,
            "scenario": base.scenario.model_copy(update={"batch_size": batch, "kind": kind}),
            "collectors": base.collectors.model_copy(update={"energy": energy}),
            "model": base.model.model_copy(update={"name": model}),
            "run_id": f"edge{throughput:g}b{batch}".ljust(12, "0"),
        }
    )


def cloud_report(
    *,
    peak_rate_qps: float | None,
    server_p99_ms: float | None,
    throughput: float = 500.0,
    client_p99_ms: float = 40.0,
    bytes_sent: float = 2000.0,
    bytes_received: float = 500.0,
    bound_ms: float | None = 50.0,
    model: str = "mlp-tiny",
) -> Report:
    """An HTTP-endpoint report with a FindPeakPerformance rate and server-side p99."""
    base = _base()
    assert base.results is not None
    http = HttpResults(
        protocol="http/1.1",
        endpoint="http://127.0.0.1:8000/infer",
        requests=1000,
        successes=1000,
        error_rate=0.0,
        bytes_sent_per_request=bytes_sent,
        bytes_received_per_request=bytes_received,
        bytes_sent_total=int(bytes_sent * 1000),
        bytes_received_total=int(bytes_received * 1000),
        server_time=latency(server_p99_ms) if server_p99_ms is not None else None,
        peak_rate_qps=peak_rate_qps,
        latency_bound_ms=bound_ms if peak_rate_qps is not None else None,
    )
    results = base.results.model_copy(
        update={
            "latency": latency(client_p99_ms),
            "throughput": base.results.throughput.model_copy(
                update={"queries_per_s": throughput, "samples_per_s": throughput}
            ),
            "stability": None,
        }
    )
    backend = BackendDescription(
        name="http", runtime="aiohttp", runtime_version="3.9", device=Device.REMOTE
    )
    return base.model_copy(
        update={
            "http": http,
            "results": results,
            "backend": backend,
            "scenario": base.scenario.model_copy(update={"kind": ScenarioKind.SERVER}),
            "model": base.model.model_copy(update={"name": model}),
            "run_id": "cloud0000000",
        }
    )
