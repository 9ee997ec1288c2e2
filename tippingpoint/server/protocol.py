"""The server's connections: a deadline on each request's head (a slow-headers guard).

aiohttp times nothing while a request's line and headers arrive: a client that trickles them a
byte at a second holds a connection (and its memory) for as long as it likes, and a few hundred
such clients exhaust the server. Here each connection's handler gives a request's head
``head_timeout_s`` from its first byte (or from the connection's opening, for the first
request) to complete; past it the server answers ``408`` with a JSON error and closes the
connection. An idle keep-alive connection between requests is not timed by this (the first byte
of the next request starts its clock). Bodies are timed by the request handlers (408 as well).

The guard needs three of aiohttp's per-connection counters (``_request_count``,
``_request_in_progress``, ``_messages``); tests/test_probe_server.py pins the behaviour, so
an aiohttp release that renames them fails there, not silently.

Usage::

    runner = make_runner(create_app(repo, config), config)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

if TYPE_CHECKING:
    from tippingpoint.server.app import ServerConfig

LOG = logging.getLogger("tippingpoint.server")


def _timeout_response(head_timeout_s: float) -> bytes:
    body = json.dumps(
        {"error": f"request headers not received within {head_timeout_s:g} s"},
        separators=(",", ":"),
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


class HeadTimeoutHandler(RequestHandler):
    """aiohttp's connection handler with a deadline on each request's head."""

    __slots__ = ("_awaiting_head", "_head_timeout_s", "_head_timer")

    def __init__(self, manager: web.Server, *, head_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout_s = head_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None
        self._awaiting_head = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A new connection: its first request's head is due within the timeout."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Bytes in: a completed head stops the clock; the first byte of a new head starts it."""
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self._awaiting_head = False
            self._disarm()
        elif self._awaiting_head and data:
            self._arm()

    async def finish_response(self, *args: Any, **kwargs: Any) -> Any:
        """A response went out: the next bytes begin the next request's head."""
        result = await super().finish_response(*args, **kwargs)
        self._awaiting_head = True
        return result

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection closed: no deadline left to keep."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None and self._head_timeout_s > 0:
            self._head_timer = self._loop.call_later(self._head_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        if self._request_in_progress or self._messages or not self._awaiting_head:
            return  # a request is being served (or queued): its head came in time
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        peer = transport.get_extra_info("peername")
        LOG.info(
            "closed a connection from %s: request headers not received within %g s",
            peer[0] if isinstance(peer, tuple) and peer else "?",
            self._head_timeout_s,
        )
        transport.write(_timeout_response(self._head_timeout_s))
        self.force_close()  # closes the transport once the 408 is flushed


class HeadTimeoutServer(web.Server):
    """aiohttp's low-level server making :class:`HeadTimeoutHandler` connections."""

    def __init__(self, *args: Any, head_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout_s = head_timeout_s

    def __call__(self) -> RequestHandler:
        """A handler for a new connection."""
        return HeadTimeoutHandler(
            self, loop=self._loop, head_timeout_s=self.head_timeout_s, **self._kwargs
        )


class HeadTimeoutRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose connections have a head deadline."""

    def __init__(self, app: web.Application, *, head_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._head_timeout_s = head_timeout_s

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return HeadTimeoutServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            head_timeout_s=self._head_timeout_s,
            **plain._kwargs,
        )


def make_runner(app: web.Application, config: ServerConfig) -> web.AppRunner:
    """The runner of ``app`` under ``config``: access log as configured, head deadline."""
    if config.access_log:
        return HeadTimeoutRunner(app, head_timeout_s=config.header_timeout_s)
    return HeadTimeoutRunner(app, head_timeout_s=config.header_timeout_s, access_log=None)
