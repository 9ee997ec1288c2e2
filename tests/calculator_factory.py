"""Report objects for calculator tests: the committed v1 fixture, with the figures replaced."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from tippingpoint.calculator.capacity import cloud_figures, edge_figures
from tippingpoint.calculator.inputs import (
    Profiles,
    cloud_inputs,
    edge_inputs,
    freeze,
    model_spec,
)
from tippingpoint.calculator.model import ModelSpec
from tippingpoint.calculator.params import Param, ParamSet
from tippingpoint.core.schema import (
    EnergySummary,
    HostFingerprint,
    HttpResults,
    LatencyStats,
    MeasurementMethod,
    Report,
    RunFlag,
    ScenarioKind,
    SweepPoint,
)
from tippingpoint.core.types import BackendDescription, Device
from tippingpoint.profiles.schema import (
    Amortisation,
    CloudKind,
    CloudProfile,
    DeviceProfile,
    Distribution,
    EgressTier,
    EnergyProfile,
    NetworkProfile,
    Sourced,
    WorkloadProfile,
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
    variant: str = "fp32",
    flags: tuple[RunFlag, ...] | None = None,
    host: HostFingerprint | None = None,
) -> Report:
    """An on-device report: throughput in inferences/s, p99 in ms, optional J/inference.

    Unflagged unless ``flags`` says otherwise; measured on the fixture's x86 host unless
    ``host`` is given (see :func:`pi5_host`)."""
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
            "model": base.model.model_copy(update={"name": model, "variant": variant}),
            "run_id": f"edge{throughput:g}b{batch}{variant}".ljust(12, "0"),
            "flags": flags or (),
            **({"host": host} if host is not None else {}),
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
    variant: str = "fp32",
    flags: tuple[RunFlag, ...] = (),
    sweep: tuple[SweepPoint, ...] = (),
) -> Report:
    """An HTTP-endpoint report with a FindPeakPerformance rate and server-side p99.

    With ``peak_rate_qps`` None and ``sweep`` given, an SLO search that found no rate; with
    both None and no sweep, a run without a search."""
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
        latency_bound_ms=bound_ms if peak_rate_qps is not None or sweep else None,
        sweep=sweep,
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
            "model": base.model.model_copy(update={"name": model, "variant": variant}),
            "run_id": f"cloud{variant}".ljust(12, "0"),
            "flags": flags,
        }
    )


def pi5_host() -> HostFingerprint:
    """The fixture's host as a Raspberry Pi 5 records it (aarch64, the board model)."""
    host = _base().host
    return host.model_copy(
        update={
            "machine": "aarch64",
            "cpu_model": "Raspberry Pi 5 Model B Rev 1.0",
            "board": "Raspberry Pi 5 Model B Rev 1.0",
        }
    )


def sourced(value: float, **kw: object) -> Sourced:
    """A value with a source and a date, as a hand-worked example states it."""
    return Sourced(value=value, source="hand-worked example", as_of=date(2026, 11, 1), **kw)


def hand_profiles(**workload: object) -> Profiles:
    """The profiles of the hand-worked example (tests/test_calculator_handworked.py)."""
    s = sourced
    fields: dict[str, object] = {
        "name": "w",
        "inferences_per_day": s(1_000_000),
        "growth_per_year": s(0),
        "peak_to_average": s(1),
        "request_bytes": s(1000),
        "response_bytes": s(1000),
        "slo_p99_ms": 100,
        "horizon_years": 1,
        "discount_rate": s(0),
        "amortisation": Amortisation.STRAIGHT_LINE,
    }
    fields.update(workload)
    return Profiles(
        device=DeviceProfile(
            name="box",
            purchase_price=s(1200),
            life_years=s(1),
            residual_value=s(0),
            idle_watts=s(0),
            active_watts=s(10),
            target_utilisation=s(1.0),
            maintenance_share=s(0),
            ops_per_year=s(0),
            integration_cost=s(0),
        ),
        network=NetworkProfile(
            name="lan",
            rtt_ms=s(1),
            uplink_mbps=s(1000),
            downlink_mbps=s(1000),
            loss=s(0),
            cost_per_gb=s(0),
        ),
        energy=EnergyProfile(
            name="grid", price_per_kwh=s(0.20), grid_gco2_per_kwh=s(400), pue=s(1.0)
        ),
        workload=WorkloadProfile.model_validate(fields),
    )


def hand_cloud(**changes: object) -> CloudProfile:
    """The cloud of the hand-worked example: 1 USD/h, 50/s SLO-bound, 50 % target load."""
    s = sourced
    fields: dict[str, object] = {
        "name": "gpu",
        "kind": CloudKind.INSTANCE,
        "price_per_hour": s(1.0),
        "target_utilisation": s(0.5),
        "min_instances": 1,
        "egress_tiers": (
            EgressTier(up_to_gb=10, price_per_gb=s(0.0)),
            EgressTier(price_per_gb=s(0.10)),
        ),
        "storage_per_month": s(0),
        "ops_per_year": s(0),
        "integration_cost": s(0),
        "instance_watts": s(70),
        "pue": s(1.1),
        "grid_gco2_per_kwh": s(400),
    }
    fields.update(changes)
    return CloudProfile.model_validate(fields)


def hand_api(price_per_million: float = 10.0) -> CloudProfile:
    """A per-request API with no egress or fixed fees."""
    return CloudProfile(
        name="api",
        kind=CloudKind.API,
        price_per_million_requests=sourced(price_per_million),
        server_p99_ms=sourced(20),
        storage_per_month=sourced(0),
        ops_per_year=sourced(0),
        integration_cost=sourced(0),
    )


def hand_params(
    cloud: CloudProfile | None = None, **workload: object
) -> tuple[ParamSet, ModelSpec]:
    """The hand-worked example's inputs and model spec, for model-level tests."""
    profiles = hand_profiles(**workload)
    cloud = cloud or hand_cloud()
    edge, _ = edge_figures([edge_report(100, 20, joules=0.05)])
    figures, _ = cloud_figures([cloud_report(peak_rate_qps=50, server_p99_ms=10)])
    assert edge is not None
    params = freeze({**edge_inputs(profiles, edge), **cloud_inputs(profiles, cloud, figures)})
    return params, model_spec(profiles, cloud, energy_from_power=False)


def with_range(
    params: ParamSet, param: Param, low: float, high: float, dist: Distribution
) -> ParamSet:
    """``params`` with one input's range and distribution replaced."""
    changed = dict(params)
    changed[param] = params[param].model_copy(
        update={"low": low, "high": high, "distribution": dist}
    )
    return freeze(changed)
