"""The asynchronous HTTP clients of the backend: :class:`ClientBase` (prepared requests, and
:meth:`ClientBase.send`, which times one request, retries what may be retried and classifies
a failure instead of raising) and :class:`HttpClient`, its aiohttp implementation; the raw
asyncio client (:mod:`tippingpoint.backends.http.rawclient`) is the other.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tippingpoint.backends.http.auth import AuthConfig, Secret
from tippingpoint.backends.http.protocols import HttpMethod
from tippingpoint.backends.network import Completion
from tippingpoint.core.errors import RuntimeFailure

if TYPE_CHECKING:
    import aiohttp


class EndpointError(RuntimeFailure):
    """The endpoint is unreachable, not ready, or answered a setup request with an error."""


class ErrorKind(str, Enum):
    """How a request failed; the report counts requests by kind."""

    HTTP_4XX = "http-4xx"
    HTTP_5XX = "http-5xx"
    HTTP_OTHER = "http-other"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    PROTOCOL = "protocol"
    UNDECODABLE = "undecodable"
    """A 2xx whose body the wire protocol cannot decode (garbage, truncated, wrong format)."""


RETRYABLE = frozenset(
    {ErrorKind.HTTP_5XX.value, ErrorKind.TIMEOUT.value, ErrorKind.CONNECTION.value}
)
SERVER_TIMING = "Server-Timing"
_DUR = re.compile(r"(?:^|,)\s*([A-Za-z0-9_.-]+)[^,]*?;\s*dur=([0-9.]+)")


def parse_server_timing(value: str, metric: str = "total") -> int:
    """Server time in ns from a ``Server-Timing`` header: the named metric, else the largest
    ``dur`` (milliseconds, per the W3C spec); -1 when there is none."""
    best = -1.0
    for name, dur in _DUR.findall(value):
        try:
            ms = float(dur)
        except ValueError:
            continue
        if name == metric:
            return int(ms * 1e6)
        best = max(best, ms)
    return int(best * 1e6) if best >= 0 else -1


@dataclass(frozen=True)
class ClientSettings:
    """Connection settings, all recorded in the report."""

    base_url: str
    """``scheme://host[:port][/prefix]``: never user info or a query."""
    query: Secret | None = field(default=None, repr=False)
    """The endpoint URL's query, appended to every request (it may hold a key)."""
    timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    max_connections: int = 256
    retries: int = 0
    tls_verify: bool = True
    server_timing_metric: str = "total"
    connect_to: tuple[str, int] | None = None
    """Where to open TCP connections instead of the URL's host and port (curl --connect-to);
    the URL's host name stays the TLS server name and the Host header."""


def checked_connect_to(value: str | None) -> str | None:
    """An option's ``connect_to`` as given, once it parses (a ValueError naming the fix)."""
    if value is not None:
        parse_connect_to(value)
    return value


def parse_connect_to(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) as a (host, port) pair; ValueError naming the fix."""
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"connect_to {value!r} is not HOST:PORT, e.g. 127.0.0.1:8443")
    return host, int(port)


@dataclass
class PreparedRequest:
    """A request ready to send many times; the wire size of its head is learnt on first use."""

    method: HttpMethod
    url: str
    body: bytes
    headers: dict[str, str]
    head_bytes: int = 0
    target: object = None
    """The parsed URL (``yarl.URL``), built once so the hot path does not parse it again."""
    wire: bytes = b""
    """The whole request serialised once (the raw client writes it as is; empty for aiohttp)."""


def status_error(status: int) -> str | None:
    """The error kind of an HTTP status: None for 2xx, else ``http-5xx``/``http-4xx``/
    ``http-other``."""
    if status >= 500:
        return ErrorKind.HTTP_5XX.value
    if status >= 400:
        return ErrorKind.HTTP_4XX.value
    if status >= 300 or status < 200:
        return ErrorKind.HTTP_OTHER.value
    return None


def _head_size(first_line: str, headers: Mapping[str, str]) -> int:
    return len(first_line) + 2 + sum(len(k) + len(v) + 4 for k, v in headers.items()) + 2


def request_url(settings: ClientSettings, path: str) -> str:
    """The URL of a request to ``path``: the base URL, the path and the endpoint's query."""
    url = settings.base_url + path
    if settings.query is None:
        return url
    return url + ("&" if "?" in path else "?") + settings.query.reveal()


class ClientBase:
    """What both HTTP clients share: settings, credentials, the cap on requests in flight and
    the timed retry loop of :meth:`send`. Create a client and use it on one running event loop;
    subclasses implement the setup calls and one attempt."""

    def __init__(self, settings: ClientSettings, auth: AuthConfig) -> None:
        self.settings = settings
        self.auth = auth
        self._slots: asyncio.Semaphore | None = None

    async def start(self) -> None:
        """Open the client on the running loop."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close every connection."""
        raise NotImplementedError

    def prepare(
        self, method: HttpMethod, path: str, body: bytes, headers: Mapping[str, str]
    ) -> PreparedRequest:
        """A request to ``path`` with the auth headers added, ready to send many times."""
        raise NotImplementedError

    async def fetch(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        """GET ``path`` for setup (readiness, metadata); failures are EndpointErrors."""
        raise NotImplementedError

    async def send(self, req: PreparedRequest) -> tuple[Completion, bytes, Mapping[str, str]]:
        """Send ``req`` (retrying retryable failures when enabled); never raises for a failed
        request. Returns the completion, the response body and headers (empty on failure)."""
        start = time.perf_counter_ns()
        slots = self._slots
        assert slots is not None, "start() first"
        retries = 0
        async with slots:
            while True:
                c, body, headers = await self._attempt(req, start, retries)
                if c.error is None or retries >= self.settings.retries or c.error not in RETRYABLE:
                    return c, body, headers
                retries += 1

    async def _attempt(
        self, req: PreparedRequest, start: int, retries: int
    ) -> tuple[Completion, bytes, Mapping[str, str]]:
        """One attempt at ``req``, timed from ``start`` (the first attempt's send)."""
        raise NotImplementedError


class HttpClient(ClientBase):
    """One aiohttp ``ClientSession``; create it and use it on the same running event loop."""

    def __init__(self, settings: ClientSettings, auth: AuthConfig) -> None:
        super().__init__(settings, auth)
        self._session: aiohttp.ClientSession | None = None
        self._server_name: str | None = None
        """The TLS server name when connecting elsewhere (connect_to): the URL's host."""
        if settings.connect_to is not None and settings.base_url.startswith("https://"):
            self._server_name = urlsplit(settings.base_url).hostname

    async def start(self) -> None:
        """Open the connection pool."""
        import aiohttp

        ssl_arg: ssl.SSLContext | bool = True
        if not self.settings.tls_verify:
            ssl_arg = False
        connector = aiohttp.TCPConnector(
            limit=self.settings.max_connections, ssl=ssl_arg, enable_cleanup_closed=False
        )
        timeout = aiohttp.ClientTimeout(
            total=self.settings.timeout_s, connect=self.settings.connect_timeout_s
        )
        # requests beyond the pool wait here, O(1) per wake-up, not in the connector's queue
        self._slots = asyncio.Semaphore(self.settings.max_connections)
        self._session = aiohttp.ClientSession(
            base_url=None,
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            raise_for_status=False,
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "tippingpoint"},
        )

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def prepare(
        self, method: HttpMethod, path: str, body: bytes, headers: Mapping[str, str]
    ) -> PreparedRequest:
        """A request to ``path`` with the auth headers added."""
        from yarl import URL

        all_headers = {**headers, **self.auth.headers()}
        url = request_url(self.settings, path)
        target = URL(url, encoded=True)
        if self.settings.connect_to is not None:
            # connect elsewhere; the URL's authority stays the Host header (and the TLS name)
            all_headers.setdefault("Host", target.raw_authority)
            host, port = self.settings.connect_to
            target = target.with_host(host).with_port(port)
        return PreparedRequest(method, url, body, all_headers, target=target)

    async def fetch(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        """GET ``path`` for setup (readiness, metadata); failures are EndpointErrors."""
        req = self.prepare(HttpMethod.GET, path, b"", {})
        assert self._session is not None, "start() first"
        try:
            async with self._session.get(
                req.target or req.url,  # type: ignore[arg-type]
                headers=req.headers,
                server_hostname=self._server_name,
            ) as resp:
                body = await resp.read()
                return resp.status, body, dict(resp.headers)
        except Exception as exc:  # any aiohttp/OS failure: one line, secret scrubbed
            raise EndpointError(
                self.auth.scrub(f"cannot reach {self._public(path)}: {_describe(exc)}"),
                "check --endpoint, that the server is running, and TLS settings",
            ) from None

    def _public(self, path: str) -> str:
        from tippingpoint.backends.http.auth import public_url

        return public_url(self.settings.base_url + path)

    async def _attempt(
        self, req: PreparedRequest, start: int, retries: int
    ) -> tuple[Completion, bytes, Mapping[str, str]]:
        import aiohttp

        session = self._session
        assert session is not None, "start() first"
        error: str | None = None
        body = b""
        headers: Mapping[str, str] = {}
        recv = 0
        server_ns = -1
        status = 0
        try:
            async with session.request(
                req.method.value,
                req.target or req.url,  # type: ignore[arg-type]
                data=req.body or None,
                headers=req.headers,
                server_hostname=self._server_name,
            ) as resp:
                body = await resp.read()
                end = time.perf_counter_ns()
                status = resp.status
                headers = resp.headers
                if not req.head_bytes:
                    info = resp.request_info
                    req.head_bytes = _head_size(
                        f"{req.method.value} {info.url.raw_path_qs} HTTP/1.1", info.headers
                    )
                recv = (
                    len(body)
                    + 15
                    + len(resp.reason or "")
                    + sum(len(k) + len(v) + 4 for k, v in resp.raw_headers)
                    + 2
                )
                timing = headers.get(SERVER_TIMING)
                if timing is not None:
                    server_ns = parse_server_timing(timing, self.settings.server_timing_metric)
                error = status_error(status)
        except TimeoutError:
            end, error = time.perf_counter_ns(), ErrorKind.TIMEOUT.value
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError):
            end, error = time.perf_counter_ns(), ErrorKind.CONNECTION.value
        except aiohttp.ClientError:
            end, error = time.perf_counter_ns(), ErrorKind.PROTOCOL.value
        sent = req.head_bytes + len(req.body)
        completion = Completion(start, end, error, sent, recv, server_ns, retries, status)
        return completion, body, headers


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of a client exception (class and OS reason only)."""
    reason = getattr(exc, "strerror", None) or getattr(exc, "os_error", None)
    return f"{type(exc).__name__}" + (f" ({reason})" if reason else "")
