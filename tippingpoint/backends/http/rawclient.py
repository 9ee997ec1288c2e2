"""A raw HTTP/1.1 client on asyncio's transports: the same ``prepare``/``fetch``/``send`` as
:class:`~tippingpoint.backends.http.client.HttpClient`, at a fraction of aiohttp's cost per request.

The request is serialised once (request line, headers, body) and written as one buffer each
time; a :class:`_Connection` protocol parses the status line, the headers, and the body by
``Content-Length``, chunked transfer-encoding, or until the server closes. Keep-alive
connections wait in a LIFO pool never larger than ``max_connections`` (the cap on requests in
flight). Errors are classified exactly as the aiohttp client classifies them.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from tippingpoint.backends.http.auth import AuthConfig, public_url
from tippingpoint.backends.http.client import (
    ClientBase,
    ClientSettings,
    EndpointError,
    ErrorKind,
    PreparedRequest,
    _describe,
    parse_server_timing,
    request_url,
    status_error,
)
from tippingpoint.backends.http.protocols import HttpMethod
from tippingpoint.backends.network import Completion

MAX_HEAD = 64 * 1024
"""Longest response head accepted (status line and headers)."""
MAX_BODY = 1 << 30
"""Largest response body accepted."""
USER_AGENT = "tippingpoint"
CLOSE_TIMEOUT_S = 1.0
"""How long ``close`` waits for connections (TLS shutdowns) to end before aborting them."""
_NO_BODY = frozenset({204, 304})


class ProtocolViolation(Exception):
    """The server's response is not valid HTTP/1.1 (classified as a protocol error)."""


class Headers(dict[str, str]):
    """Response headers with lower-case names, looked up case-insensitively."""

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The header's value, whatever the case of ``key``; ``default`` when absent."""
        return dict.get(self, key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())


class Response:
    """One parsed response: status, headers, body, and its size on the wire."""

    __slots__ = ("body", "headers", "status", "wire_bytes")

    def __init__(self, status: int, headers: Headers, body: bytes, wire_bytes: int) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.wire_bytes = wire_bytes


def _parse_head(head: bytes) -> tuple[int, Headers, bool]:
    """Status, headers and whether the connection stays open, from a response head."""
    lines = head.split(b"\r\n")
    line = lines[0]
    if len(line) < 12 or not line.startswith(b"HTTP/1.") or line[12:13] not in (b"", b" "):
        raise ProtocolViolation("malformed status line")
    try:
        status = int(line[9:12])
    except ValueError:
        raise ProtocolViolation("malformed status code") from None
    headers = Headers()
    for raw in lines[1:]:
        name, sep, value = raw.partition(b":")
        if not sep or not name or name[-1:] in (b" ", b"\t"):
            raise ProtocolViolation("malformed header line")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        old = dict.get(headers, key)
        dict.__setitem__(headers, key, text if old is None else f"{old}, {text}")
    conn = dict.get(headers, "connection", "").lower()
    keep = "close" not in conn if line[7:8] == b"1" else "keep-alive" in conn
    return status, headers, keep


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request on it at a time."""

    def __init__(self, client: RawHttpClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.reusable = True
        self.lost: asyncio.Future[None] = client.loop.create_future()
        self._reset_response()

    def _reset_response(self) -> None:
        self.status = -1
        self.headers: Headers | None = None
        self.head_len = 0
        self.body_len = -1  # -1: until close; -2: chunked
        self.chunks: list[bytes] = []
        self.chunk_wire = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Parse as much of the response as has arrived."""
        if self.waiter is None or self.waiter.done():
            self._abort()  # data nobody asked for: the connection is out of step
            return
        self.buf += data
        try:
            self._parse()
        except ProtocolViolation as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        """The server closed its side: ends a body read until close, else fails the request."""
        self.reusable = False
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection closed: finish a body read until close, or fail the request."""
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers is not None and self.body_len == -1 and exc is None:
            self._complete(bytes(self.buf), len(self.buf))
            return
        if not isinstance(exc, OSError):
            exc = ConnectionResetError("server closed the connection")
        waiter.set_exception(exc)

    # requests
    def request(self, wire: bytes) -> asyncio.Future[Response]:
        """Write ``wire`` and return the future of its response."""
        assert self.transport is not None
        self._reset_response()
        self.buf.clear()
        self.waiter = self.client.loop.create_future()
        self.transport.write(wire)
        return self.waiter

    def timeout(self) -> None:
        """The request's time is up: fail it and drop the connection."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(TimeoutError())
        self._abort()

    def _abort(self) -> None:
        self.reusable = False
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self._abort()

    def _complete(self, body: bytes, body_wire: int) -> None:
        assert self.headers is not None and self.waiter is not None
        self.waiter.set_result(Response(self.status, self.headers, body, self.head_len + body_wire))

    def _parse(self) -> None:
        buf = self.buf
        if self.headers is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise ProtocolViolation("response head too long")
                return
            status, headers, keep = _parse_head(bytes(buf[:end]))
            del buf[: end + 4]
            if 100 <= status < 200:  # interim response (100 Continue): skip it
                return self._parse() if buf else None
            self.status, self.headers, self.head_len = status, headers, end + 4
            self.reusable = self.reusable and keep
            te = dict.get(headers, "transfer-encoding")
            length = dict.get(headers, "content-length")
            if status in _NO_BODY:
                self.body_len = 0
            elif te is not None:
                if te.lower().rsplit(",", 1)[-1].strip() != "chunked":
                    raise ProtocolViolation(f"unsupported transfer-encoding {te[:40]}")
                self.body_len = -2
            elif length is not None:
                try:
                    self.body_len = int(length)
                except ValueError:
                    raise ProtocolViolation("malformed content-length") from None
                if not 0 <= self.body_len <= MAX_BODY:
                    raise ProtocolViolation("content-length out of range")
            else:
                self.body_len = -1
                self.reusable = False
        n = self.body_len
        if n >= 0:
            if len(buf) < n:
                return
            if len(buf) > n:
                self.reusable = False  # bytes beyond the response: never reuse
            self._complete(bytes(buf[:n]), n)
        elif n == -2:
            self._parse_chunks()
        elif len(buf) > MAX_BODY:
            raise ProtocolViolation("response body too large")

    def _parse_chunks(self) -> None:
        buf = self.buf
        while True:
            eol = buf.find(b"\r\n")
            if eol < 0:
                if len(buf) > MAX_HEAD:
                    raise ProtocolViolation("chunk size line too long")
                return
            try:
                size = int(bytes(buf[:eol]).split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolViolation("malformed chunk size") from None
            if size < 0 or self.chunk_wire + size > MAX_BODY:
                raise ProtocolViolation("chunk size out of range")
            if size == 0:  # last chunk, then optional trailers and an empty line
                end = buf.find(b"\r\n\r\n", eol)
                if end >= 0:
                    self.chunk_wire += end + 4
                    if len(buf) > end + 4:
                        self.reusable = False
                    self._complete(b"".join(self.chunks), self.chunk_wire)
                return
            need = eol + 2 + size + 2
            if len(buf) < need:
                return
            if buf[need - 2 : need] != b"\r\n":
                raise ProtocolViolation("chunk not followed by CRLF")
            self.chunks.append(bytes(buf[eol + 2 : eol + 2 + size]))
            self.chunk_wire += need
            del buf[:need]


def _ssl_context(verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class RawHttpClient(ClientBase):
    """HTTP/1.1 over asyncio transports with pre-serialised requests and a keep-alive pool;
    create it and use it on the same running event loop."""

    def __init__(self, settings: ClientSettings, auth: AuthConfig) -> None:
        super().__init__(settings, auth)
        parts = urlsplit(settings.base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = self.port == (443 if self.scheme == "https" else 80)
        self._host_header = host if default else f"{host}:{self.port}"
        self._ssl = _ssl_context(settings.tls_verify) if self.scheme == "https" else None
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]

    async def start(self) -> None:
        """Bind to the running loop; connections open on first use."""
        self.loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.settings.max_connections)

    async def close(self) -> None:
        """Close every connection: gracefully (TLS close_notify) for up to a second, then by
        abort, so no socket outlives the event loop."""
        conns = [c for c in self._all if c.transport is not None]
        self._all.clear()
        self._idle.clear()
        for conn in conns:
            conn.transport.close()  # type: ignore[union-attr]
        if conns:
            await asyncio.wait([c.lost for c in conns], timeout=CLOSE_TIMEOUT_S)
        for conn in conns:
            if not conn.lost.done():
                conn.transport.abort()  # type: ignore[union-attr]
        await asyncio.sleep(0)  # let the aborts' connection_lost callbacks close the sockets

    def prepare(
        self, method: HttpMethod, path: str, body: bytes, headers: Mapping[str, str]
    ) -> PreparedRequest:
        """A request to ``path`` with the auth headers added, serialised once."""
        all_headers = {**headers, **self.auth.headers()}
        url = request_url(self.settings, path)
        wire = self._serialise(method, url, body, all_headers)
        return PreparedRequest(method, url, body, all_headers, len(wire) - len(body), wire=wire)

    def _serialise(
        self, method: HttpMethod, url: str, body: bytes, headers: Mapping[str, str]
    ) -> bytes:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method.value} {target} HTTP/1.1", f"Host: {self._host_header}"]
        given = {k.lower() for k in headers}
        if "user-agent" not in given:
            lines.append(f"User-Agent: {USER_AGENT}")
        for name, value in headers.items():
            if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
                continue
            if any(c in name + value for c in "\r\n"):
                raise EndpointError(
                    f"header {name} holds a line break", "remove line breaks from header values"
                )
            lines.append(f"{name}: {value}")
        if body or method is HttpMethod.POST:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def _connect(self) -> _Connection:
        _, conn = await asyncio.wait_for(
            self.loop.create_connection(
                lambda: _Connection(self),
                *(self.settings.connect_to or (self.host, self.port)),
                ssl=self._ssl,
                server_hostname=self.host if self._ssl is not None else None,
            ),
            self.settings.connect_timeout_s,
        )
        self._all.add(conn)
        return conn

    async def _exchange(self, wire: bytes, deadline: float) -> Response:
        """One request on a pooled or new connection; raises on failure."""
        idle = self._idle
        conn = None
        while idle:
            conn = idle.pop()
            if not conn.closed:
                break
            self._all.discard(conn)
            conn = None
        if conn is None:
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise TimeoutError()
            conn = await asyncio.wait_for(self._connect(), remaining)
        waiter = conn.request(wire)
        timer = self.loop.call_at(deadline, conn.timeout)
        try:
            resp = await waiter
        except BaseException:
            conn._abort()
            self._all.discard(conn)
            raise
        finally:
            timer.cancel()
        if conn.reusable and not conn.closed:
            conn.waiter = None
            idle.append(conn)
        else:
            if conn.transport is not None:
                conn.transport.close()
            self._all.discard(conn)
        return resp

    async def fetch(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        """GET ``path`` for setup (readiness, metadata); failures are EndpointErrors."""
        req = self.prepare(HttpMethod.GET, path, b"", {})
        assert self._slots is not None, "start() first"
        try:
            async with self._slots:
                resp = await self._exchange(req.wire, self.loop.time() + self.settings.timeout_s)
            return resp.status, resp.body, dict(resp.headers)
        except Exception as exc:  # any OS/TLS/parse failure: one line, secret scrubbed
            raise EndpointError(
                self.auth.scrub(
                    f"cannot reach {public_url(self.settings.base_url + path)}: {_describe(exc)}"
                ),
                "check --endpoint, that the server is running, and TLS settings",
            ) from None

    async def _attempt(
        self, req: PreparedRequest, start: int, retries: int
    ) -> tuple[Completion, bytes, Mapping[str, str]]:
        wire = req.wire
        error: str | None = None
        server_ns = -1
        try:
            resp = await self._exchange(wire, self.loop.time() + self.settings.timeout_s)
        except TimeoutError:
            error = ErrorKind.TIMEOUT.value
        except OSError:  # refused, reset, closed early, TLS failures
            error = ErrorKind.CONNECTION.value
        except ProtocolViolation:
            error = ErrorKind.PROTOCOL.value
        if error is not None:
            c = Completion(start, time.perf_counter_ns(), error, len(wire), 0, -1, retries)
            return c, b"", {}
        end = time.perf_counter_ns()
        status = resp.status
        timing = dict.get(resp.headers, "server-timing")
        if timing is not None:
            server_ns = parse_server_timing(timing, self.settings.server_timing_metric)
        error = status_error(status)
        c = Completion(start, end, error, len(wire), resp.wire_bytes, server_ns, retries, status)
        return c, resp.body, resp.headers
