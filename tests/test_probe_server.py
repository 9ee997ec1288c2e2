"""The probe's server abuse, replayed against the reference server on loopback: answers are
4xx with a one-line JSON error, never a 500, and the log holds no traceback."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
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


HEAD_TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def slow_guard() -> Iterator[tuple[str, int]]:
    """A server whose request heads are due within HEAD_TIMEOUT_S."""
    cfg = ServerConfig(port=0, header_timeout_s=HEAD_TIMEOUT_S)
    with BackgroundServer(load_repository(["mlp-tiny"]), cfg) as srv:
        host, port = srv.url.removeprefix("http://").split(":")
        yield host, int(port)


def _ready(server: tuple[str, int]) -> int:
    with socket.create_connection(server, timeout=10) as s:
        s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def _trickle(s: socket.socket, head: bytes) -> bytes:
    """Send ``head`` a byte at a time (0.1 s apart) until the server answers or closes; what
    it sent back ('' when the whole head went out unanswered)."""
    s.settimeout(0.1)
    for i in range(len(head)):
        try:
            s.sendall(head[i : i + 1])
        except OSError:  # closed under us: read what came before the close
            break
        try:
            got = s.recv(65536)
        except TimeoutError:
            continue
        data = got
        s.settimeout(10)
        while got:
            got = s.recv(65536)
            data += got
        return data
    s.settimeout(10)
    data = b""
    with contextlib.suppress(OSError):
        while got := s.recv(65536):
            data += got
    return data


SLOW_HEAD = (
    b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"y" * 20) for i in range(20))
    + b"\r\n"
)


def test_headers_trickled_a_byte_at_a_time_are_cut_with_a_408(
    slow_guard: tuple[str, int],
) -> None:
    """The probe's trickled headers held a connection forever (bodies were timed, heads not).
    The head is longer than the guard lets it take (over 600 bytes at 10 a second), so the
    server must answer 408 and close before the head ends; it keeps serving others."""
    assert len(SLOW_HEAD) * 0.1 > 10 * HEAD_TIMEOUT_S
    with socket.create_connection(slow_guard, timeout=10) as s:
        s.sendall(SLOW_HEAD[:5])
        assert _ready(slow_guard) == 200  # served while the slow head is pending
        data = _trickle(s, SLOW_HEAD[5:])
    assert data.startswith(b"HTTP/1.1 408"), data[:80]
    doc = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert "headers not received within 0.5 s" in doc["error"]
    assert _ready(slow_guard) == 200


def test_the_next_request_on_a_kept_alive_connection_is_guarded_too(
    slow_guard: tuple[str, int],
) -> None:
    """A quick first request then a trickled second one on the same connection: cut as well;
    the idle time between the two (longer than the guard) does not count."""
    with socket.create_connection(slow_guard, timeout=10) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first[:80]
        time.sleep(3 * HEAD_TIMEOUT_S)  # idle keep-alive: not a slow head
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        second = s.recv(65536)
        assert second.startswith(b"HTTP/1.1 200"), second[:80]
        data = _trickle(s, SLOW_HEAD)
    assert data.startswith(b"HTTP/1.1 408"), data[:80]
