"""KServe v2 over gRPC: the grpc backend against ``tippingpoint serve --grpc-port`` (single
stream, open loop, concurrency, server time from the trailer, TLS and tokens), the official
``tritonclient.grpc`` as an independent client of that port, and the transcribed protocol
messages checked field by field against Triton's generated ones."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.http_helpers import add_feeds, self_signed, short_scenario, write_add_model
from tippingpoint.backends.grpc.backend import GrpcBackend
from tippingpoint.backends.http.client import EndpointError
from tippingpoint.core.errors import InferenceError, InvalidOptionError
from tippingpoint.core.schema import ScenarioKind, StopRule
from tippingpoint.harness.network import run_network_scenario

TOKEN = "grpc-Token-Secret-4kQ"
VAR = "TIPPINGPOINT_GRPC_TEST_TOKEN"
STOP = StopRule(min_queries=40, min_duration_s=0.1, max_duration_s=5.0)


@contextmanager
def serve_grpc(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``tippingpoint serve ARGS --port 0 --grpc-port 0``: (gRPC URL, process)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tippingpoint", "serve", "--port", "0", "--grpc-port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert " and grpc" in line, f"serve did not start: {line!r}"
        yield line.split(" and ")[1].split()[0], proc
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def add_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_add_model(tmp_path_factory.mktemp("grpc") / "add.onnx")


@pytest.fixture(scope="module")
def grpc_url(add_model: Path) -> Iterator[str]:
    with serve_grpc("-m", str(add_model)) as (url, _):
        yield url


def test_protocol_messages_match_tritons(request: pytest.FixtureRequest) -> None:
    """Every transcribed message has Triton's field names, numbers, types and cardinality."""
    service_pb2 = pytest.importorskip(
        "tritonclient.grpc.service_pb2", reason="tritonclient[grpc] is in the dev extra"
    )
    from tippingpoint.backends.grpc.proto import FILE, MESSAGES

    def same(mine: object, theirs: object, path: str) -> None:
        for f in mine.fields:  # type: ignore[attr-defined]
            g = theirs.fields_by_name.get(f.name)  # type: ignore[attr-defined]
            assert g is not None, f"{path}.{f.name} is not in Triton's proto"
            assert (f.number, f.type, f.is_repeated) == (g.number, g.type, g.is_repeated), (
                f"{path}.{f.name}"
            )
            if f.message_type is not None:
                same(f.message_type, g.message_type, f"{path}.{f.name}")

    for name in (n for n in MESSAGES if "." not in n):
        same(
            FILE.message_types_by_name[name],
            service_pb2.DESCRIPTOR.message_types_by_name[name],
            name,
        )
    service = FILE.services_by_name["GRPCInferenceService"]
    theirs = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for method in service.methods:
        assert theirs.methods_by_name[method.name].input_type.name == method.input_type.name


def test_scenarios_over_grpc(grpc_url: str, add_model: Path) -> None:
    feeds = add_feeds()
    with GrpcBackend().load(add_model, {"endpoint": grpc_url}) as s:
        y, z = s.bind(feeds)()
        np.testing.assert_allclose(y, feeds[0] + feeds[1], rtol=1e-6)
        np.testing.assert_array_equal(z, feeds[2])
        single = run_network_scenario(s, feeds, short_scenario(stop=STOP))
        server = run_network_scenario(
            s, feeds, short_scenario(ScenarioKind.SERVER, target_rate_qps=200.0, stop=STOP)
        )
        conc = run_network_scenario(
            s, feeds, short_scenario(ScenarioKind.CONCURRENCY, concurrency=4, stop=STOP)
        )
        remote = s.remote_model()
    for run in (single, server, conc):
        http = run.http
        assert http.protocol == "kserve-v2-grpc" and http.endpoint == grpc_url
        assert http.error_rate == 0 and http.requests >= 40
        assert http.server_time is not None and http.network_time is not None
        assert http.bytes_sent_per_request > 0 and http.bytes_received_per_request > 0
    assert server.http.offered_rate_qps == 200.0 and server.http.send_lag is not None
    assert (remote.name, remote.version, remote.platform) == ("add", "1", "onnxruntime_onnx")


def test_a_bad_request_is_a_counted_status(grpc_url: str, add_model: Path) -> None:
    """Inputs the server rejects (float64 where it takes float32): INVALID_ARGUMENT, counted
    by kind, never a latency."""
    bad = [np.zeros((1, 4)), np.zeros((1, 4)), np.zeros((1, 2), np.int64)]
    with GrpcBackend().load(add_model, {"endpoint": grpc_url}) as s:
        with pytest.raises(InferenceError, match="grpc-invalid-argument"):
            s.bind(bad)()
        run = run_network_scenario(s, bad, short_scenario(stop=STOP))
    assert run.http.errors_by_kind == {"grpc-invalid-argument": run.http.requests}
    assert run.results is None


def test_tls_and_token(tmp_path: Path, add_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv(VAR, TOKEN)
    args = ("-m", str(add_model), "--tls-cert", str(cert), "--tls-key", str(key))
    with serve_grpc(*args, "--token-env", VAR, env=dict(os.environ)) as (url, _):
        assert url.startswith("grpcs://")
        opts = {"endpoint": url, "tls_ca": str(cert), "token_env": VAR}
        with GrpcBackend().load(add_model, opts) as s:
            run = run_network_scenario(s, add_feeds(), short_scenario(stop=STOP))
            assert run.http.auth == "bearer" and run.http.tls_verify is True
            assert run.http.error_rate == 0
        monkeypatch.setenv(VAR, "wrong-" + TOKEN)
        with pytest.raises(EndpointError, match="refused the credentials") as info:
            GrpcBackend().load(add_model, opts)
        assert TOKEN not in info.value.one_line()
        monkeypatch.setenv(VAR, TOKEN)
        with pytest.raises(EndpointError, match="cannot reach"):  # an unknown CA
            GrpcBackend().load(add_model, {**opts, "tls_ca": None, "connect_timeout_s": 1.0})


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"endpoint": "grpc://u:pw-Secret-77@127.0.0.1:1"}, "no user info or query"),
        ({"endpoint": "grpc://127.0.0.1:1/?api_key=k3y-Secret-99"}, "no user info or query"),
        ({"endpoint": "grpcs://127.0.0.1:1", "tls_verify": False}, "tls_ca"),
        ({"endpoint": "http://127.0.0.1:1"}, "grpc://"),
    ],
)
def test_what_grpc_cannot_do_is_one_line(options: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidOptionError) as info:
        GrpcBackend().validate_options(options)  # type: ignore[arg-type]
    line = info.value.one_line()
    assert needle in line and "Secret" not in line


def test_tritonclient_grpc_is_an_independent_client(grpc_url: str) -> None:
    grpcclient = pytest.importorskip(
        "tritonclient.grpc", reason="tritonclient[grpc] is in the dev extra"
    )
    client = grpcclient.InferenceServerClient(grpc_url.removeprefix("grpc://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        meta = client.get_model_metadata("add")
        assert [i.name for i in meta.inputs] == ["a", "b", "i"]
        feeds = add_feeds(3)
        inputs = []
        for name, arr, dtype in zip("abi", feeds, ("FP32", "FP32", "INT64"), strict=True):
            t = grpcclient.InferInput(name, list(arr.shape), dtype)
            t.set_data_from_numpy(arr)
            inputs.append(t)
        result = client.infer("add", inputs)
        np.testing.assert_allclose(result.as_numpy("y"), feeds[0] + feeds[1], rtol=1e-6)
        np.testing.assert_array_equal(result.as_numpy("z"), feeds[2])
    finally:
        client.close()


def test_run_with_a_grpc_endpoint(grpc_url: str, tmp_path: Path) -> None:
    from tests.helpers import one_report, tp

    proc = tp(
        "run", "-m", "add", "--endpoint", grpc_url, "-s", "single-stream", "--min-queries",
        "20", "--min-duration", "0.05", "--warmup-duration", "0", "--idle-s", "0",
        "--out", str(tmp_path), "--json",
    )  # fmt: skip
    report = one_report(proc)
    assert report.backend is not None and report.backend.name == "grpc"
    assert report.http is not None and report.http.protocol == "kserve-v2-grpc"
    assert report.model.remote is not None and not report.model.remote.local_file


def test_a_model_the_grpc_endpoint_does_not_serve_is_a_usage_error(
    grpc_url: str, tmp_path: Path
) -> None:
    """NOT_FOUND from the server's metadata RPC: one line, exit 2, before anything runs."""
    from tests.helpers import tp

    out = tmp_path / "out"
    proc = tp("run", "-m", "nosuch", "--endpoint", grpc_url, "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "does not serve the model" in line and "NOT_FOUND" in line
    assert "--opt model_name=NAME" in line and "Traceback" not in proc.stderr
    assert not out.exists()
