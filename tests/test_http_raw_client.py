"""The raw asyncio HTTP/1.1 client (``client=raw``) against real servers on 127.0.0.1: the
reference server (outputs, bytes, Server-Timing, every scenario), the fault server (5xx, resets,
timeouts, retries, chunked bodies, secrets), and a server writing hand-made responses for the
framing the parser must handle (split chunks with trailers, bodies ending at close, malformed
heads, keep-alive reuse)."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.http_helpers import (
    RATE,
    RUN_S,
    STALL_AT_S,
    STALL_S,
    add_feeds,
    fault_server,
    freeze,
    self_signed,
    short_scenario,
    write_add_model,
)
from tippingpoint.backends.http import HttpBackend, HttpSession
from tippingpoint.backends.http.auth import AuthConfig
from tippingpoint.backends.http.client import ClientSettings, EndpointError
from tippingpoint.backends.http.protocols import HttpMethod
from tippingpoint.backends.http.rawclient import RawHttpClient
from tippingpoint.core.errors import InferenceError
from tippingpoint.core.schema import ArrivalProcess, ScenarioKind, StopRule
from tippingpoint.harness.network import run_network_scenario
from tippingpoint.server.app import ServerConfig
from tippingpoint.server.background import BackgroundServer
from tippingpoint.server.repository import load_repository

SHORT = StopRule(min_queries=20, min_duration_s=0.0, max_duration_s=5.0)
SECRET = "tp-secret-raw-Hq4mT7"
VAR = "TIPPINGPOINT_TEST_RAW_TOKEN"


def raw(url: str, model: str = "add", **extra: object) -> HttpSession:
    return HttpBackend().load(Path(model), {"endpoint": url, "client": "raw", **extra})


def template(url: str, path: str, client: str = "raw", **extra: object) -> HttpSession:
    opts = {"endpoint": url, "protocol": "template", "path": path, "template": "{}", **extra}
    return HttpBackend().load(Path("remote"), {**opts, "client": client})


def head_size(headers: dict[str, str], reason: str = "OK") -> int:
    """Bytes of a response head as aiohttp's client counts them, from parsed headers."""
    return 15 + len(reason) + sum(len(k) + len(v) + 4 for k, v in headers.items()) + 2


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_outputs_and_description(add_server: BackgroundServer, binary: bool) -> None:
    with raw(add_server.url, binary=binary) as s:
        feeds = add_feeds(5)
        y, z = s.bind(feeds)()
        desc = s.describe()
    np.testing.assert_allclose(y, feeds[0] + feeds[1], rtol=1e-6)
    np.testing.assert_array_equal(z, feeds[2])
    assert desc.options["client"] == "raw" and desc.runtime == "asyncio"


def test_bytes_and_server_timing_match_the_wire(add_server: BackgroundServer) -> None:
    feeds = add_feeds(3)
    with raw(add_server.url) as s:
        req = s.prepare(feeds)
        c, body, headers = s.run(s.client.send(req), 30)
        with HttpBackend().load(Path("add"), {"endpoint": add_server.url}) as aio:
            aio_req = aio.prepare(feeds)
    assert c.error is None and c.status == 200 and c.retries == 0
    # the request is serialised once: head, then exactly the body aiohttp would send
    assert req.wire.endswith(aio_req.body) and req.body == aio_req.body
    head = req.wire[: len(req.wire) - len(req.body)]
    assert head.startswith(b"POST /v2/models/add/infer HTTP/1.1\r\n")
    assert f"Content-Length: {len(req.body)}\r\n".encode() in head
    assert c.bytes_sent == len(req.wire) == req.head_bytes + len(req.body)
    assert c.bytes_received == head_size(dict(headers)) + len(body)
    timing = headers["server-timing"]
    total_ms = float(timing.rsplit("total;dur=", 1)[1])
    assert c.server_ns == int(total_ms * 1e6) and 0 < c.server_ns < c.end_ns - c.start_ns
    assert headers.get("Server-Timing") == headers["SERVER-TIMING"] == timing


def test_scenarios_match_aiohttp_figures(add_server: BackgroundServer) -> None:
    runs = {}
    for client in ("aiohttp", "raw"):
        opts = {"endpoint": add_server.url, "client": client}
        with HttpBackend().load(Path("add"), opts) as s:
            runs[client] = run_network_scenario(s, add_feeds(), short_scenario()).http
    a, r = runs["aiohttp"], runs["raw"]
    assert r.requests == r.successes >= 60 and r.error_rate == 0
    assert r.status_counts == {"200": r.requests}
    assert r.server_time is not None and r.network_time is not None
    # same response bytes up to the width of the Server-Timing figures
    assert abs(r.bytes_received_per_request - a.bytes_received_per_request) <= 4
    assert r.bytes_sent_per_request > len(add_feeds()[0].tobytes())


def test_concurrency_and_open_loop(add_server: BackgroundServer) -> None:
    with raw(add_server.url, max_connections=4) as s:
        conc = run_network_scenario(
            s, add_feeds(), short_scenario(ScenarioKind.CONCURRENCY, concurrency=8)
        )
        sc = short_scenario(
            ScenarioKind.SERVER,
            target_rate_qps=200.0,
            arrival=ArrivalProcess.POISSON,
            stop=StopRule(min_queries=100, min_duration_s=0.5, max_duration_s=5.0),
        )
        server_run = run_network_scenario(s, add_feeds(), sc)
        pool = len(s.client._all)  # type: ignore[union-attr]
    assert conc.http.successes == conc.http.requests >= 60 and conc.http.error_rate == 0
    assert server_run.http.successes == server_run.http.requests >= 100
    assert server_run.http.send_lag is not None
    assert np.all(server_run.load.latency_ns >= server_run.load.service_ns)
    assert 1 <= pool <= 4  # never more connections than max_connections


def test_resets_and_timeouts_are_counted(faults: str) -> None:
    with template(faults, "/reset") as s:
        reset = run_network_scenario(s, [], short_scenario(stop=SHORT))
    assert (
        reset.http.errors_by_kind == {"connection": reset.http.requests}
        and reset.http.requests >= 20
    )
    assert reset.http.status_counts == {}
    stop = StopRule(min_queries=3, min_duration_s=0, max_duration_s=5)
    warm = short_scenario().warmup.model_copy(update={"min_queries": 1})
    with template(faults, "/slow/2000", timeout_s=0.2) as s:
        slow = run_network_scenario(s, [], short_scenario(warmup=warm, stop=stop))
        # the connection a timed-out request held is dropped, the next request still succeeds
        ok = s.run(s.client.send(s.client.prepare(HttpMethod.GET, "/ok", b"", {})), 10)[0]
    assert slow.http.errors_by_kind == {"timeout": slow.http.requests}
    assert ok.error is None and ok.status == 200


def test_retries(faults: str) -> None:
    """(Open loop against the half-failing endpoint: test_http_faults, for both clients.)"""
    with template(faults, "/flaky", retries=2) as s:
        retried = run_network_scenario(s, [], short_scenario(stop=SHORT))
        assert s.describe().options["retries"] == 2
    assert retried.http.error_rate == 0.0 and retried.http.retries >= retried.http.requests // 2


def test_chunked_response_from_aiohttp(faults: str) -> None:
    with template(faults, "/chunked", response_path="outputs") as s:
        (out,) = s.bind([])()
        run = run_network_scenario(s, [], short_scenario(stop=SHORT))
    np.testing.assert_array_equal(out, [1, 2, 3])
    assert run.http.error_rate == 0 and run.http.server_time is not None
    assert run.http.server_time.p50 == pytest.approx(0.07)


def test_tfserving_protocol(faults: str) -> None:
    with HttpBackend().load(
        Path("double"),
        {"endpoint": faults, "protocol": "tfserving", "model_name": "double", "client": "raw"},
    ) as s:
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        (y,) = s.bind([x])()
    np.testing.assert_array_equal(y, 2 * x)


def test_refused_connection_is_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EndpointError) as info:
        raw(f"http://127.0.0.1:{port}")
    assert "cannot reach" in info.value.one_line() and "\n" not in info.value.one_line()


def test_secret_never_leaks(
    faults: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(VAR, SECRET)
    texts: list[str] = []
    for extra in ({}, {"auth_header": "X-Api-Key"}):
        with template(faults, "/echo", token_env=VAR, **extra) as s:
            assert SECRET.encode() in s.prepare([]).wire  # it is sent...
            with pytest.raises(InferenceError) as err:
                s.bind([])()
            assert "***" in err.value.one_line()  # ...and scrubbed from the echo
            run = run_network_scenario(s, [], short_scenario(stop=SHORT))
            texts += [
                err.value.one_line(),
                run.http.model_dump_json(),
                s.describe().model_dump_json(),
            ]
    out, errout = capfd.readouterr()
    for text in [*texts, out, errout]:
        assert SECRET not in text


# hand-made responses: (chunks written with a pause between them, close afterwards)
CANNED: dict[str, tuple[list[bytes], bool]] = {
    "/split-chunked": (
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer-Timing: total;dur=1.5\r\n",
            b"\r\n4;ext=1\r",
            b"\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r",
            b"\n\r\n",
        ],
        False,
    ),
    "/until-close": ([b"HTTP/1.0 200 OK\r\n\r\nhel", b"lo"], True),
    "/no-content": ([b"HTTP/1.1 204 No Content\r\n\r\n"], False),
    "/bad-status": ([b"HTTX/9 nonsense\r\n\r\n"], False),
    "/gzip-te": ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"], False),
    "/bad-chunk": ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], False),
    "/length": ([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], False),
    "/short-close": ([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], True),
}


async def _canned(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            parts, close = CANNED[path]
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0.005)
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def test_framing_against_hand_made_responses() -> None:
    async def scenario() -> dict[str, tuple[object, ...]]:
        accepted: list[asyncio.Task[None] | None] = []

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            accepted.append(asyncio.current_task())  # type: ignore[arg-type]
            await _canned(r, w)

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        client = RawHttpClient(
            ClientSettings(f"http://127.0.0.1:{port}", timeout_s=5), AuthConfig()
        )
        await client.start()
        results: dict[str, tuple[object, ...]] = {}
        try:
            for path in CANNED:
                c, body, _ = await client.send(client.prepare(HttpMethod.GET, path, b"", {}))
                results[path] = (c.error, c.status, body, c.bytes_received, c.server_ns)
            await client.send(client.prepare(HttpMethod.GET, "/length", b"", {}))
            before = len(accepted)
            for _ in range(10):
                await client.send(client.prepare(HttpMethod.GET, "/length", b"", {}))
            results["reuse"] = (len(accepted) - before,)
        finally:
            await client.close()
            srv.close()
            await asyncio.gather(*(t for t in accepted if t is not None))
            await srv.wait_closed()
        return results

    res = asyncio.run(scenario())
    wire = b"".join(CANNED["/split-chunked"][0])
    assert res["/split-chunked"] == (None, 200, b"Wikipedia", len(wire), 1_500_000)
    assert res["/until-close"] == (
        None,
        200,
        b"hello",
        len(b"".join(CANNED["/until-close"][0])),
        -1,
    )
    assert res["/no-content"][:3] == (None, 204, b"")
    assert res["/bad-status"][:2] == ("protocol", 0)
    assert res["/gzip-te"][:2] == ("protocol", 0)
    assert res["/bad-chunk"][:2] == ("protocol", 0)
    assert res["/length"][:3] == (None, 200, b"ok")
    assert res["/short-close"][:2] == ("connection", 0)
    assert res["reuse"] == (0,)  # ten keep-alive requests on the connection already open


@pytest.mark.slow
def test_open_loop_p99_shows_a_one_second_stall() -> None:
    """The coordinated-omission check of test_http_stall, open loop, with the raw client."""
    with fault_server() as (url, proc), template(url, "/ok") as s:
        sc = short_scenario(
            ScenarioKind.SERVER,
            target_rate_qps=RATE,
            arrival=ArrivalProcess.CONSTANT,
            stop=StopRule(min_queries=1, min_duration_s=RUN_S, max_duration_s=RUN_S + 5),
        )
        timer = freeze(proc, STALL_AT_S, STALL_S)
        try:
            run = run_network_scenario(s, [], sc)
        finally:
            timer.join()
    assert run.results is not None
    assert run.http.requests >= RATE * RUN_S * 0.99 and run.http.error_rate == 0.0
    lat = run.results.latency
    assert lat.p99 >= 500.0 and lat.max >= 900.0 and lat.p50 < lat.p99 / 10


def test_auto_measures_open_loop_on_plain_http_with_raw(add_server: BackgroundServer) -> None:
    sc = short_scenario(
        ScenarioKind.SERVER,
        target_rate_qps=200.0,
        stop=StopRule(min_queries=40, min_duration_s=0.2, max_duration_s=5.0),
    )
    with HttpBackend().load(Path("add"), {"endpoint": add_server.url}) as s:
        assert s.options.client.value == "auto"
        single = run_network_scenario(s, add_feeds(), short_scenario())
        before = s.describe()
        open_run = run_network_scenario(s, add_feeds(), sc)
        after = s.describe()
        assert s.client_for(ScenarioKind.SINGLE_STREAM) is s.client
        assert isinstance(s.client_for(ScenarioKind.SERVER), RawHttpClient)
    assert before.options["client"] == "aiohttp" and before.runtime == "aiohttp"
    assert after.options["client"] == "raw" and after.runtime == "asyncio"
    assert single.http.error_rate == 0 and open_run.http.error_rate == 0
    assert open_run.http.requests >= 40


def test_auto_keeps_aiohttp_for_https(tmp_path: Path) -> None:
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    cert, key = self_signed(tmp_path)
    model = write_add_model(tmp_path / "add.onnx")
    cfg = ServerConfig(port=0, tls_cert=cert, tls_key=key)
    sc = short_scenario(
        ScenarioKind.SERVER,
        target_rate_qps=100.0,
        stop=StopRule(min_queries=20, min_duration_s=0.1, max_duration_s=5.0),
    )
    with BackgroundServer(load_repository([str(model)]), cfg) as srv:
        with HttpBackend().load(model, {"endpoint": srv.url, "tls_verify": False}) as s:
            run = run_network_scenario(s, add_feeds(), sc)
            assert s.client_for(ScenarioKind.SERVER) is s.client
            assert s.describe().options["client"] == "aiohttp"
        # the raw client speaks TLS too, verification off recorded the same way
        with raw(srv.url, model=str(model), tls_verify=False) as s:
            raw_run = run_network_scenario(s, add_feeds(), sc)
        # closing waits for the TLS shutdowns (or aborts): no socket outlives the session
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
        with pytest.raises(EndpointError, match=r"SSL|Certificate"):
            raw(srv.url, model=str(model))
    assert run.http.error_rate == 0 and raw_run.http.error_rate == 0
    assert raw_run.http.tls_verify is False


def test_reports_name_the_client_that_measured(
    tmp_path: Path, add_server: BackgroundServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tippingpoint.cli import main

    out = tmp_path / "results"
    code = main(
        [
            "run", "-m", str(write_add_model(tmp_path / "add.onnx")), "--endpoint", add_server.url,
            "-s", "single-stream", "-s", "server", "--rate", "100", "--min-queries", "20",
            "--min-duration", "0.1", "--warmup-duration", "0", "--out", str(out), "--json",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    reports = [json.loads(f.read_text()) for f in sorted(out.glob("*.json"))]
    clients = {r["scenario"]["kind"]: r["backend"]["options"]["client"] for r in reports}
    assert clients == {"single-stream": "aiohttp", "server": "raw"}
