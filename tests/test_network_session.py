"""The network-session interface: the HTTP session implements it, the harness's scenarios need
nothing else (a second, in-process transport runs them too), and the pre-run check validates a
network backend's options through the declared hook, without connecting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from tests.http_helpers import add_feeds, short_scenario, write_add_model
from tippingpoint.backends.base import SessionBase
from tippingpoint.backends.http import HttpBackend
from tippingpoint.backends.network import (
    Completion,
    NetworkInfo,
    NetworkLimits,
    NetworkSession,
    RequestFn,
)
from tippingpoint.backends.registry import get_backend
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import StopRule
from tippingpoint.core.types import BackendDescription, Device, TensorSpec
from tippingpoint.harness.network import run_concurrency_sweep, run_network_scenario
from tippingpoint.harness.preflight import preflight
from tippingpoint.harness.runner import RunSpec
from tippingpoint.models.registry import resolve_model
from tippingpoint.server.app import ServerConfig
from tippingpoint.server.background import BackgroundServer
from tippingpoint.server.repository import load_repository

T = TypeVar("T")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    path = write_add_model(tmp_path_factory.mktemp("m") / "add.onnx")
    with BackgroundServer(load_repository([str(path)]), ServerConfig(port=0)) as srv:
        yield srv


def test_http_session_is_a_network_session(server: BackgroundServer) -> None:
    assert get_backend("http").network is True
    opts = {"endpoint": server.url, "timeout_s": 3.0, "retries": 1, "max_inflight": 64}
    with HttpBackend().load(Path("add"), opts) as s:
        assert isinstance(s, NetworkSession)
        assert s.limits == NetworkLimits(timeout_s=3.0, retries=1, max_inflight=64)
        assert s.limits.request_budget_s == 6.0
        assert s.network_info() == NetworkInfo(
            protocol="kserve-v2+binary", endpoint=server.url, tls_verify=None, auth=None
        )
        send = s.request_fn(ScenarioKind.SINGLE_STREAM, add_feeds())
        c = s.run_async(send(), 10.0)
    assert c.error is None and c.status == 200 and c.end_ns > c.start_ns


def test_a_local_session_is_not_a_network_session() -> None:
    ref = resolve_model("mlp-tiny")
    backend = get_backend("onnxruntime")
    assert backend.network is False
    with backend().load(ref.path, {}) as s:
        assert not isinstance(s, NetworkSession)


def test_http_options_are_validated_without_connecting() -> None:
    backend = HttpBackend()
    backend.validate_options({})  # the endpoint may come later (the local stand-in server)
    backend.validate_options({"endpoint": "http://127.0.0.1:9", "binary": False})
    with pytest.raises(InvalidOptionError, match="'protocol'"):
        backend.validate_options({"protocol": "soap"})
    ref = resolve_model("mlp-tiny")
    cell = RunSpec(ref, "http", short_scenario(), backend_options={"endpoint": "http://x:9"})
    assert preflight([cell]).skipped == {}  # nothing listens there: nothing was contacted
    bad = RunSpec(ref, "http", short_scenario(), backend_options={"retries": -1})
    with pytest.raises(InvalidOptionError, match="http option 'retries'"):
        preflight([bad])


class EchoTransportSession(SessionBase):
    """A network session whose transport is in-process: each request completes after a
    fixed delay on the session's own event loop (the harness cannot tell it from HTTP)."""

    def __init__(self, delay_s: float) -> None:
        spec = TensorSpec(name="x", shape=(None, 4), dtype="float32")
        desc = BackendDescription(
            name="echo-net", runtime="asyncio", runtime_version="0", device=Device.REMOTE
        )
        super().__init__((spec,), (spec,), desc)
        self.delay_s = delay_s
        self.kinds: list[ScenarioKind] = []

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        return lambda: list(feeds)

    def request_fn(self, kind: ScenarioKind, feeds: Sequence[np.ndarray]) -> RequestFn:
        self.kinds.append(kind)
        size = sum(a.nbytes for a in feeds)

        async def send() -> Completion:
            start = time.perf_counter_ns()
            await asyncio.sleep(self.delay_s)
            return Completion(start, time.perf_counter_ns(), None, size, size, -1, 0, 0)

        return send

    def run_async(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run(asyncio.wait_for(coro, timeout))

    @property
    def limits(self) -> NetworkLimits:
        return NetworkLimits(timeout_s=1.0, retries=0, max_inflight=32)

    def network_info(self) -> NetworkInfo:
        return NetworkInfo(protocol="echo", endpoint="in-process", tls_verify=None, auth=None)


def test_the_scenarios_need_only_the_interface() -> None:
    s = EchoTransportSession(delay_s=0.002)
    assert isinstance(s, NetworkSession)
    feeds = [np.zeros((1, 4), np.float32)]
    begun: list[int] = []
    run = run_network_scenario(s, feeds, short_scenario(), on_measure_start=begun.append)
    assert run.samples is not None and run.results is not None
    assert run.http.protocol == "echo" and run.http.endpoint == "in-process"
    assert run.http.requests == run.http.successes >= 60 and run.http.error_rate == 0
    assert run.http.bytes_sent_per_request == 16
    assert run.results.latency.count == run.http.successes
    assert len(begun) == 1 and begun[0] <= run.samples.window_start_ns
    server = short_scenario(
        ScenarioKind.SERVER,
        target_rate_qps=200.0,
        stop=StopRule(min_queries=20, min_duration_s=0.1, max_duration_s=5.0),
    )
    open_run = run_network_scenario(s, feeds, server)
    assert open_run.http.offered_rate_qps == 200.0 and open_run.http.send_lag is not None
    sweep = run_concurrency_sweep(s, feeds, short_scenario(), [1, 4])
    assert [p.concurrency for p in sweep[-1].http.sweep] == [1, 4]
    assert s.kinds == [
        ScenarioKind.SINGLE_STREAM,
        ScenarioKind.SERVER,
        ScenarioKind.CONCURRENCY,
        ScenarioKind.CONCURRENCY,
    ]
