"""The http backend against the reference server on 127.0.0.1: metadata, JSON and binary
tensors, every scenario, the peak-rate search, and the report's HTTP section."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.http_helpers import add_feeds, serve_process, short_scenario, write_add_model
from tippingpoint.backends.base import Session
from tippingpoint.backends.http import HttpBackend, HttpSession
from tippingpoint.backends.registry import get_backend
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.schema import ArrivalProcess, RunFlag, ScenarioKind, StopRule
from tippingpoint.harness.network import (
    MAX_ERROR_RATE,
    MAX_PROBES,
    run_concurrency_sweep,
    run_network_scenario,
)
from tippingpoint.server.app import ServerConfig
from tippingpoint.server.background import BackgroundServer
from tippingpoint.server.repository import load_repository


@pytest.fixture(params=[True, False], ids=["binary", "json"])
def session(add_server: BackgroundServer, request: pytest.FixtureRequest) -> Iterator[HttpSession]:
    with HttpBackend().load(
        Path("add.onnx"), {"endpoint": add_server.url, "binary": request.param}
    ) as s:
        yield s


def test_registered_under_http() -> None:
    assert get_backend("http") is HttpBackend
    assert HttpBackend().availability().installed


def test_specs_from_metadata_and_outputs_exact(session: HttpSession) -> None:
    assert isinstance(session, Session)
    assert [(s.name, s.shape, s.dtype) for s in session.inputs] == [
        ("a", (None, 4), "float32"),
        ("b", (None, 4), "float32"),
        ("i", (None, 2), "int64"),
    ]
    feeds = add_feeds(5)
    y, z = session.bind(feeds)()
    np.testing.assert_allclose(y, feeds[0] + feeds[1], rtol=1e-6)
    np.testing.assert_array_equal(z, feeds[2])
    desc = session.describe()
    assert desc.device.value == "remote" and desc.name == "http"
    assert desc.options["model_name"] == "add"


def test_single_stream_figures(session: HttpSession) -> None:
    run = run_network_scenario(session, add_feeds(), short_scenario())
    http = run.http
    assert run.results is not None and run.samples is not None
    assert http.requests == http.successes == run.results.latency.count >= 60
    assert http.error_rate == 0.0 and http.errors_by_kind == {}
    assert http.bytes_sent_per_request > 0 and http.bytes_received_per_request > 0
    assert http.bytes_sent_total == pytest.approx(http.bytes_sent_per_request * http.requests)
    # server time comes from Server-Timing and is below the client's latency
    assert http.server_time is not None and http.network_time is not None
    assert http.server_time.p50 < run.results.latency.p50
    assert http.send_lag is None and http.late_fraction is None
    assert run.warmup.queries >= 3
    assert run.results.stability is not None


def test_binary_is_smaller_than_json(add_server: BackgroundServer) -> None:
    feeds = add_feeds(64)  # random floats: ~20 characters each in JSON, 4 bytes in binary
    sizes = {}
    for binary in (True, False):
        with HttpBackend().load(Path("add"), {"endpoint": add_server.url, "binary": binary}) as s:
            sizes[binary] = run_network_scenario(s, feeds, short_scenario()).http
    assert sizes[True].protocol == "kserve-v2+binary" and sizes[False].protocol == "kserve-v2"
    assert sizes[True].bytes_received_per_request < sizes[False].bytes_received_per_request


def test_concurrency_sweep(add_server: BackgroundServer) -> None:
    with HttpBackend().load(Path("add"), {"endpoint": add_server.url}) as s:
        runs = run_concurrency_sweep(s, add_feeds(), short_scenario(), [1, 4])
    assert [p.concurrency for p in runs[-1].http.sweep] == [1, 4]
    assert all(r.http.successes >= 60 and r.http.error_rate == 0 for r in runs)


@pytest.mark.parametrize("arrival", [ArrivalProcess.POISSON, ArrivalProcess.CONSTANT])
def test_server_scenario_open_loop(add_server: BackgroundServer, arrival: ArrivalProcess) -> None:
    sc = short_scenario(
        ScenarioKind.SERVER,
        target_rate_qps=200.0,
        arrival=arrival,
        stop=StopRule(min_queries=100, min_duration_s=0.5, max_duration_s=5.0),
    )
    with HttpBackend().load(Path("add"), {"endpoint": add_server.url}) as s:
        run = run_network_scenario(s, add_feeds(), sc)
    http = run.http
    assert http.offered_rate_qps == 200.0
    assert http.requests >= 100 and http.successes == http.requests
    assert http.send_lag is not None and http.late_fraction is not None
    assert (RunFlag.SEND_LAG_INVALID in run.flags) == (http.late_fraction > 0.01)
    # latency from the scheduled time is never below the time from the actual send
    assert np.all(run.load.latency_ns >= run.load.service_ns)


def test_server_scenario_needs_rate(add_server: BackgroundServer) -> None:
    with HttpBackend().load(Path("add"), {"endpoint": add_server.url}) as s:
        with pytest.raises(InvalidOptionError, match="target rate"):
            run_network_scenario(s, add_feeds(), short_scenario(ScenarioKind.SERVER))


def test_peak_search_is_bounded_and_consistent(tmp_path: Path) -> None:
    sc = short_scenario(
        ScenarioKind.SERVER,
        target_rate_qps=400.0,
        stop=StopRule(min_queries=10, min_duration_s=0.1, max_duration_s=1.0),
    )
    model = write_add_model(tmp_path / "add.onnx")
    # the server in its own process, so it does not compete with the generator for the GIL
    with (
        serve_process("--model", str(model)) as (url, _),
        HttpBackend().load(model, {"endpoint": url}) as s,
    ):
        # an unreachable bound: every probe fails, the search halves and stops, no peak
        low = run_network_scenario(s, add_feeds(), sc, latency_bound_ms=1e-6)
        # a generous bound: the search doubles until its probes fail or it runs out
        high = run_network_scenario(s, add_feeds(), sc, latency_bound_ms=1000.0)
    assert low.http.peak_rate_qps is None
    assert all(p.meets_bound is False for p in low.http.sweep)
    assert [p.offered_rate_qps for p in low.http.sweep] == [400, 200, 100, 50, 25]
    assert 1 <= len(high.http.sweep) <= MAX_PROBES
    assert high.http.latency_bound_ms == 1000.0
    passing = [p.offered_rate_qps for p in high.http.sweep if p.meets_bound]
    # a 1 s bound at 400 requests/s on loopback passes unless the generator itself lagged (a
    # busy machine: >1% of a short probe's requests sent >1 ms late invalidates the probe)
    for p in high.http.sweep:
        assert p.meets_bound == (
            p.p99_ms <= 1000.0 and p.error_rate <= MAX_ERROR_RATE and not p.send_lag_invalid
        )
    assert passing or all(p.send_lag_invalid for p in high.http.sweep)
    # probes pass and fail by measurement; the reported peak is always the best passing rate
    assert high.http.peak_rate_qps == (max(passing) if passing else None)
    if passing and len(passing) < len(high.http.sweep):
        failing = [p.offered_rate_qps for p in high.http.sweep if not p.meets_bound]
        assert min(failing) > high.http.peak_rate_qps
    assert high.http.sweep[0].offered_rate_qps == 400.0


def test_options_are_validated(add_server: BackgroundServer) -> None:
    with pytest.raises(InvalidOptionError, match="endpoint"):
        HttpBackend().load(Path("add"), {})
    with pytest.raises(InvalidOptionError, match="http option 'endpoint'"):
        HttpBackend().load(Path("add"), {"endpoint": "ftp://x"})
    with pytest.raises(InvalidOptionError, match="'protocol'"):
        HttpBackend().load(Path("add"), {"endpoint": add_server.url, "protocol": "soap"})


def test_serves_litert_models_safely_under_concurrency() -> None:
    """A LiteRT interpreter is not thread-safe: the server runs one inference at a time on it,
    even with several pool threads and several requests in flight."""
    from tippingpoint.backends.registry import get_backend
    from tippingpoint.harness.inputs import generate_feeds
    from tippingpoint.models.registry import resolve_model

    ref = resolve_model("ae-anomaly", "fp32", ".tflite")
    repo = load_repository([str(ref.path)], backend="litert")
    with BackgroundServer(repo, ServerConfig(port=0, threads=4)) as srv:
        with HttpBackend().load(ref.path, {"endpoint": srv.url}) as s:
            feeds = generate_feeds(s.inputs, 1, {}, seed=3)
            remote = s.bind(feeds)()
            run = run_network_scenario(
                s, feeds, short_scenario(ScenarioKind.CONCURRENCY, concurrency=4)
            )
    with get_backend("litert")().load(ref.path, {}) as local:
        expected = local.bind(feeds)()
    np.testing.assert_allclose(remote[0], expected[0], rtol=1e-6)
    assert run.http.error_rate == 0 and run.http.successes >= 60
