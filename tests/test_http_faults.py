"""Failures over real HTTP (a fault-injecting server on 127.0.0.1): 5xx, slow responses past
the timeout, connection resets, retries, refused connections, undecodable bodies, and the
TF Serving and template protocols. Failures are counted by kind and never become latencies."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from tests.http_helpers import short_scenario
from tippingpoint.backends.http import HttpBackend, HttpSession
from tippingpoint.backends.http.client import EndpointError
from tippingpoint.core.errors import InferenceError
from tippingpoint.core.schema import ScenarioKind, StopRule
from tippingpoint.harness.network import run_network_scenario

pytestmark = pytest.mark.probe("endpoint-faults")

SHORT = StopRule(min_queries=20, min_duration_s=0.0, max_duration_s=5.0)


def template(url: str, path: str, **extra: object) -> HttpSession:
    opts = {"endpoint": url, "protocol": "template", "path": path, "template": "{}", **extra}
    return HttpBackend().load(Path("remote"), opts)


def test_success_via_template_with_server_timing(faults: str) -> None:
    with template(faults, "/ok") as s:
        run = run_network_scenario(s, [], short_scenario(stop=SHORT))
    assert run.http.successes == run.http.requests >= 20
    assert run.http.server_time is not None and run.http.server_time.p50 == pytest.approx(0.05)


@pytest.mark.parametrize("client", ["auto", "raw"])
@pytest.mark.parametrize(
    ("path", "kind"),
    [("/status/500", "http-5xx"), ("/status/503", "http-5xx"), ("/status/404", "http-4xx")],
)
def test_error_statuses_are_counted_not_timed(
    faults: str, path: str, kind: str, client: str
) -> None:
    with template(faults, path, client=client) as s:
        run = run_network_scenario(s, [], short_scenario(stop=SHORT))
    http = run.http
    assert http.successes == 0 and http.error_rate == 1.0
    assert http.errors_by_kind == {kind: http.requests}
    assert http.status_counts == {path.rsplit("/", 1)[1]: http.requests}
    assert run.results is None and run.samples is None
    with template(faults, path, client=client) as s, pytest.raises(InferenceError, match=kind):
        s.bind([])()


def test_timeouts_are_counted(faults: str) -> None:
    with template(faults, "/slow/2000", timeout_s=0.2) as s:
        run = run_network_scenario(
            s,
            [],
            short_scenario(
                warmup=short_scenario().warmup.model_copy(update={"min_queries": 1}),
                stop=StopRule(min_queries=3, min_duration_s=0, max_duration_s=5),
            ),
        )
    assert run.http.errors_by_kind == {"timeout": run.http.requests}


def test_resets_are_counted(faults: str) -> None:
    with template(faults, "/reset") as s:
        run = run_network_scenario(s, [], short_scenario(stop=SHORT))
    assert run.http.errors_by_kind == {"connection": run.http.requests}
    assert run.http.status_counts == {}
    assert run.http.requests >= 20


@pytest.mark.parametrize("client", ["auto", "raw"])
def test_open_loop_mixed_outcomes_keep_running(faults: str, client: str) -> None:
    """Open loop against a half-failing endpoint: the run completes, errors are a share."""
    sc = short_scenario(
        ScenarioKind.SERVER,
        target_rate_qps=200.0,
        stop=StopRule(min_queries=60, min_duration_s=0.2, max_duration_s=5),
    )
    with template(faults, "/flaky", client=client) as s:
        run = run_network_scenario(s, [], sc)
    http = run.http
    assert http.requests >= 60
    assert 0.3 < http.error_rate < 0.7
    assert run.results is not None and run.results.latency.count == http.successes
    # per-request bytes describe the successful exchanges (egress is priced from them): every
    # 200 here has the same size, and the 503s ("try again") are larger, so a mean over all
    # requests would be neither
    per_ok = http.bytes_received_per_request
    assert per_ok == pytest.approx(round(per_ok)) and per_ok > 0
    assert http.bytes_received_total / http.requests > per_ok


def test_retries_are_off_by_default_and_recorded_when_on(faults: str) -> None:
    with template(faults, "/flaky") as s:
        assert s.describe().options["retries"] == 0
        run = run_network_scenario(s, [], short_scenario(stop=SHORT))
    assert run.http.retries == 0 and run.http.error_rate > 0.3
    with template(faults, "/flaky", retries=2) as s:
        run = run_network_scenario(s, [], short_scenario(stop=SHORT))
        assert s.describe().options["retries"] == 2
    assert run.http.error_rate == 0.0 and run.http.status_counts == {"200": run.http.requests}
    assert run.http.retries >= run.http.requests // 2


def test_refused_connection_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EndpointError) as info:
        HttpBackend().load(Path("m.onnx"), {"endpoint": f"http://127.0.0.1:{port}"})
    assert "cannot reach" in info.value.one_line() and "\n" not in info.value.one_line()


def test_undecodable_response_raises_inference_error(faults: str) -> None:
    with template(faults, "/garbage", response_path="outputs") as s:
        with pytest.raises(InferenceError, match="cannot decode"):
            s.bind([])()


def test_tfserving_protocol(faults: str) -> None:
    opts = {"endpoint": faults, "protocol": "tfserving", "model_name": "double"}
    with HttpBackend().load(Path("double"), opts) as s:
        assert [(i.name, i.shape, i.dtype) for i in s.inputs] == [("x", (None, 4), "float32")]
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        (y,) = s.bind([x])()
        np.testing.assert_array_equal(y, 2 * x)
        assert y.dtype == np.float32
        run = run_network_scenario(s, [x], short_scenario(stop=SHORT))
    assert run.http.protocol == "tfserving" and run.http.error_rate == 0


def test_template_with_placeholders(faults: str) -> None:
    opts = {
        "endpoint": faults,
        "protocol": "template",
        "path": "/v1/models/double:predict",
        "template": '{"inputs": {"x": "{{x}}"}}',
        "response_path": "outputs",
        "inputs": "x:float32:1x4",
    }
    with HttpBackend().load(Path("double"), opts) as s:
        x = np.ones((1, 4), np.float32)
        (y,) = s.bind([x])()
    np.testing.assert_array_equal(y, 2 * x)


@pytest.mark.parametrize("client", ["aiohttp", "raw"])
@pytest.mark.parametrize("kind", [ScenarioKind.SINGLE_STREAM, ScenarioKind.SERVER])
def test_a_200_with_garbage_is_an_undecodable_failure(
    faults: str, client: str, kind: ScenarioKind
) -> None:
    """The probe's garbage server: every reply is a 200 the protocol cannot decode; none may
    count as an inference."""
    sc = short_scenario(kind, target_rate_qps=200.0 if kind is ScenarioKind.SERVER else None)
    with template(faults, "/garbage", client=client) as s:
        run = run_network_scenario(s, [], sc.model_copy(update={"stop": SHORT}))
    http = run.http
    assert http.successes == 0 and http.requests >= 20
    assert http.errors_by_kind == {"undecodable": http.requests}
    assert http.status_counts == {"200": http.requests}
    assert run.results is None


def test_a_run_past_the_error_rate_limit_is_flagged(faults: str) -> None:
    """The probe: 30% of requests answered 500 and the run was 'ok' with no flag."""
    from tippingpoint.core.schema import RunFlag

    with template(faults, "/flaky") as s:  # every other request is a 503
        bad = run_network_scenario(s, [], short_scenario(stop=SHORT))
    with template(faults, "/ok") as s:
        good = run_network_scenario(s, [], short_scenario(stop=SHORT))
    assert bad.http.error_rate > 0.3 and RunFlag.ERROR_RATE in bad.flags
    assert good.http.error_rate == 0 and RunFlag.ERROR_RATE not in good.flags


def test_a_first_request_that_fails_once_does_not_fail_the_call(faults: str) -> None:
    """The probe: a single failed first request aborted a run against a server that recovers
    (``/flaky`` answers 503 then 200)."""
    with template(faults, "/flaky", response_path="") as s:
        for _ in range(4):
            s.bind([])()
