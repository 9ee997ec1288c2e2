"""The probe's server abuse, replayed against the reference server on loopback: answers are
4xx with a one-line JSON error, never a 500, and the log holds no traceback."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import pytest

from tippingpoint.backends.http.auth import Secret
from tippingpoint.server.app import ServerConfig
from tippingpoint.server.background import BackgroundServer
from tippingpoint.server.repository import load_repository

pytestmark = pytest.mark.probe("server-abuse")
TOKEN = "srv-Token-Secret-31"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    cfg = ServerConfig(port=0, token=Secret(TOKEN))
    with BackgroundServer(load_repository(["mlp-tiny"]), cfg) as srv:
        host, port = srv.url.removeprefix("http://").split(":")
        yield host, int(port)


def exchange(server: tuple[str, int], head: bytes, body: bytes = b"") -> tuple[int, dict[str, str]]:
    """Send one raw request; the status and the JSON error of the answer."""
    with socket.create_connection(server, timeout=10) as s:
        s.sendall(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    doc = json.loads(data.split(b"\r\n\r\n", 1)[1] or b"{}")
    return status, doc


INFER = b"POST /v2/models/mlp-tiny/infer HTTP/1.1\r\nHost: x\r\n"
AUTH = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"


def test_json_nested_too_deeply_is_a_400(
    server: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    status, doc = exchange(server, INFER + AUTH, b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and "nested too deeply" in doc["error"]
    assert "Traceback" not in caplog.text


def test_a_non_utf8_authorization_header_is_a_401(server: tuple[str, int]) -> None:
    status, doc = exchange(server, INFER + b"Authorization: Bearer \xff\xfe\x80\r\n", b"{}")
    assert status == 401 and "token" in doc["error"]


def test_a_header_length_past_the_json_names_the_mismatch(server: tuple[str, int]) -> None:
    """The probe got 'malformed JSON: Extra data' for a binary_data_size/length mismatch."""
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 16],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 64},
                }
            ]
        }
    ).encode()
    body = head + bytes(64)
    length = b"Inference-Header-Content-Length: %d\r\n" % (len(head) + 8)
    status, doc = exchange(server, INFER + AUTH + length, body)
    assert status == 400
    assert "Inference-Header-Content-Length" in doc["error"] and "Extra data" not in doc["error"]
