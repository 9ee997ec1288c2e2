"""The reference server (KServe v2) over real HTTP on 127.0.0.1, driven with the standard
library's http.client so the server is checked independently of our own client."""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.http_helpers import add_feeds, write_add_model
from tippingpoint.backends.http import kserve
from tippingpoint.backends.http.auth import Secret
from tippingpoint.backends.http.kserve import NamedTensor
from tippingpoint.server.app import ServerConfig
from tippingpoint.server.background import BackgroundServer
from tippingpoint.server.repository import PLATFORMS, load_repository

TOKEN = "s3cr3t-server-token-7f1d"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    path = write_add_model(tmp_path_factory.mktemp("m") / "add.onnx")
    repo = load_repository([str(path), "mlp-tiny"])
    cfg = ServerConfig(port=0, max_body_bytes=4096, request_timeout_s=0.5)
    with BackgroundServer(repo, cfg) as srv:
        yield srv


def request(
    srv: BackgroundServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, http.client.HTTPMessage]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.headers
    finally:
        conn.close()


def infer_body(feeds: list[np.ndarray], binary: bool) -> tuple[bytes, dict[str, str]]:
    tensors = [NamedTensor(n, a) for n, a in zip("abi", feeds, strict=True)]
    enc = kserve.encode_request(tensors, binary_inputs=binary, binary_outputs=binary)
    return enc.body, enc.headers()


def test_health_metadata_and_index(server: BackgroundServer) -> None:
    assert request(server, "GET", "/v2/health/live")[0] == 200
    assert request(server, "GET", "/v2/health/ready")[0] == 200
    status, body, _ = request(server, "GET", "/v2")
    assert status == 200 and "binary_tensor_data" in json.loads(body)["extensions"]
    status, body, _ = request(server, "GET", "/v2/models/add")
    meta = json.loads(body)
    assert status == 200
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("a", "FP32", [-1, 4]),
        ("b", "FP32", [-1, 4]),
        ("i", "INT64", [-1, 2]),
    ]
    status, body, _ = request(server, "POST", "/v2/repository/index", b"{}")
    assert status == 200 and {m["name"] for m in json.loads(body)} == {"add", "mlp-tiny"}
    assert request(server, "GET", "/v2/models/add/versions/1/ready")[0] == 200


@pytest.mark.parametrize("binary", [False, True])
def test_infer_matches_inputs(server: BackgroundServer, binary: bool) -> None:
    feeds = add_feeds(3)
    body, headers = infer_body(feeds, binary)
    status, data, resp_headers = request(server, "POST", "/v2/models/add/infer", body, headers)
    assert status == 200, data
    length = resp_headers.get(kserve.HEADER_LENGTH)
    assert (length is not None) == binary
    out = {t.name: t.array for t in kserve.decode_response(data, int(length) if length else None)}
    np.testing.assert_allclose(out["y"], feeds[0] + feeds[1], rtol=1e-6)
    np.testing.assert_array_equal(out["z"], feeds[2])
    assert out["z"].dtype == np.int64
    timing = resp_headers["Server-Timing"]
    assert "infer;dur=" in timing and "total;dur=" in timing


def test_requested_output_subset(server: BackgroundServer) -> None:
    feeds = add_feeds()
    doc = json.loads(infer_body(feeds, False)[0])
    doc["outputs"] = [{"name": "z"}]
    status, data, _ = request(server, "POST", "/v2/models/add/infer", json.dumps(doc).encode())
    assert status == 200
    assert [o["name"] for o in json.loads(data)["outputs"]] == ["z"]


def _valid_doc() -> dict[str, object]:
    return json.loads(infer_body(add_feeds(), False)[0])


def _with_input(**changes: object) -> bytes:
    doc = _valid_doc()
    doc["inputs"][0].update(changes)  # type: ignore[index]
    return json.dumps(doc).encode()


BAD_REQUESTS = [
    ("malformed JSON", "/v2/models/add/infer", b'{"inputs": [', {}, 400, "malformed JSON"),
    ("not an object", "/v2/models/add/infer", b"[1, 2]", {}, 400, "must be an object"),
    ("no inputs", "/v2/models/add/infer", b"{}", {}, 400, "'inputs'"),
    ("unknown model", "/v2/models/nope/infer", _with_input(), {}, 404, "unknown model 'nope'"),
    ("unknown version", "/v2/models/add/versions/7/infer", _with_input(), {}, 404, "version"),
    (
        "wrong shape",
        "/v2/models/add/infer",
        _with_input(shape=[1, 2], data=[1, 2]),
        {},
        400,
        "has shape [1, 2]",
    ),
    ("wrong dtype", "/v2/models/add/infer", _with_input(datatype="FP64"), {}, 400, "is FP64"),
    (
        "bad datatype",
        "/v2/models/add/infer",
        _with_input(datatype="FP128"),
        {},
        400,
        "unsupported datatype",
    ),
    ("data count", "/v2/models/add/infer", _with_input(data=[1.0]), {}, 400, "has 1 values"),
    (
        "ragged data",
        "/v2/models/add/infer",
        _with_input(data=[[1.0], [2.0, 3.0]]),
        {},
        400,
        "not a (nested) list",
    ),
    ("unknown input", "/v2/models/add/infer", _with_input(name="q"), {}, 400, "has no input 'q'"),
    ("negative dim", "/v2/models/add/infer", _with_input(shape=[-1, 4]), {}, 400, "'shape'"),
    (
        "bad header length",
        "/v2/models/add/infer",
        _with_input(),
        {kserve.HEADER_LENGTH: "abc"},
        400,
        "must be an integer",
    ),
    (
        "header length too long",
        "/v2/models/add/infer",
        _with_input(),
        {kserve.HEADER_LENGTH: "99999"},
        400,
        "but the body has",
    ),
    ("too large", "/v2/models/add/infer", b" " * 5000, {}, 413, "exceeds the limit"),
    ("unknown route", "/v3/anything", b"", {}, 404, "Not Found"),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "message"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_requests_are_clean_4xx(
    server: BackgroundServer,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    got, data, resp_headers = request(server, "POST", path, body, headers)
    assert got == status
    assert resp_headers.get_content_type() == "application/json"
    assert message in json.loads(data)["error"]
    # one bad request never affects the next good one
    body_ok, h = infer_body(add_feeds(), True)
    assert request(server, "POST", "/v2/models/add/infer", body_ok, h)[0] == 200


def test_binary_size_mismatch(server: BackgroundServer) -> None:
    feeds = add_feeds()
    body, headers = infer_body(feeds, True)
    status, data, _ = request(server, "POST", "/v2/models/add/infer", body[:-3], headers)
    assert status == 400 and "shorter than announced" in json.loads(data)["error"]


def test_slow_body_times_out_with_408(server: BackgroundServer) -> None:
    body, _ = infer_body(add_feeds(), False)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = (
            f"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:10])
        data = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 408")


def test_bearer_token(tmp_path: Path) -> None:
    path = write_add_model(tmp_path / "add.onnx")
    cfg = ServerConfig(port=0, token=Secret(TOKEN))
    with BackgroundServer(load_repository([f"sum={path}"]), cfg) as srv:
        body, headers = infer_body(add_feeds(), False)
        assert request(srv, "GET", "/v2/health/ready")[0] == 200
        status, data, resp_headers = request(srv, "POST", "/v2/models/sum/infer", body, headers)
        assert status == 401 and resp_headers["WWW-Authenticate"] == "Bearer"
        assert TOKEN not in data.decode()
        wrong = {**headers, "Authorization": "Bearer nope"}
        assert request(srv, "POST", "/v2/models/sum/infer", body, wrong)[0] == 401
        right = {**headers, "Authorization": f"Bearer {TOKEN}"}
        assert request(srv, "POST", "/v2/models/sum/infer", body, right)[0] == 200
        assert request(srv, "GET", "/v2/models/sum", None, right)[0] == 200


def _infer_json(srv: BackgroundServer, model: str, name: str, x: np.ndarray) -> np.ndarray:
    enc = kserve.encode_request([NamedTensor(name, x)], binary_inputs=False, binary_outputs=False)
    status, data, _ = request(srv, "POST", f"/v2/models/{model}/infer", enc.body, enc.headers())
    assert status == 200, data
    out = json.loads(data)["outputs"][0]
    return np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])


@pytest.mark.skipif(
    importlib.util.find_spec("ai_edge_litert") is None, reason="needs ai-edge-litert"
)
def test_serves_suite_model_on_litert() -> None:
    """A suite name on the litert backend serves the suite's .tflite file (not its .onnx)."""
    from tippingpoint.models.datasets import load_eval_set
    from tippingpoint.models.registry import resolve_model

    ref = resolve_model("digits-cnn")
    x = load_eval_set(ref.path.parent / "digits-cnn.eval.npz").sample(0)[0]
    outputs = {}
    for backend in ("onnxruntime", "litert"):
        repo = load_repository(["digits=digits-cnn"], backend=backend)
        with BackgroundServer(repo, ServerConfig(port=0)) as srv:
            status, data, _ = request(srv, "GET", "/v2/models/digits")
            assert status == 200
            meta = json.loads(data)
            outputs[backend] = _infer_json(srv, "digits", meta["inputs"][0]["name"], x)
            assert meta["platform"] == PLATFORMS[backend]
    np.testing.assert_allclose(outputs["litert"], outputs["onnxruntime"], rtol=0, atol=1e-4)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_serves_pt2_on_torch(tmp_path: Path) -> None:
    """A torch.export .pt2 file served on the torch backend computes the MLP it holds."""
    from tests.tflite_build import forward, random_mlp
    from tests.torch_build import export_pt2

    layers = random_mlp([8, 16, 3], seed=5)
    path = export_pt2(tmp_path / "mlp.pt2", layers)
    x = np.random.default_rng(2).standard_normal((2, 8)).astype(np.float32)
    with BackgroundServer(
        load_repository([f"mlp={path}"], backend="torch"), ServerConfig(port=0)
    ) as srv:
        meta = json.loads(request(srv, "GET", "/v2/models/mlp")[1])
        y = _infer_json(srv, "mlp", meta["inputs"][0]["name"], x)
    np.testing.assert_allclose(y, forward(layers, x), rtol=0, atol=1e-5)
