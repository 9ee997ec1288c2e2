"""Running a chosen shaper: on the caller's event loop (:func:`open_link`), on its own loop in
a background thread (:class:`LinkThread`), or in its own process
(:class:`~tippingpoint.harness.links.process.LinkProcess`).

On the client's own event loop the relay's callbacks run between the load generator's sends; a
thread shares the GIL with a load generator that spins between sends at high rates, and a
process needs a core of its own (``make bench-links`` measures all three). ``run --network``
uses the thread: the backend owns the client's loop from its load (which already talks through
the link) to its close, and the difference measured here is a fraction of a millisecond (README,
design notes). A caller that owns the loop starts the link on it, on a port reserved before the
client was pointed at it::

    entry = socket.socket(); entry.bind(("127.0.0.1", 0)); entry.listen(1024)
    link = open_link(selection, (host, port), listen=entry)   # the client uses entry's port
    session.run_async(link.start(), 30)
    ...
    record = session.run_async(link.stop(), 60)

:class:`LinkThread` serves synchronous callers without a loop (a blocking client)::

    with LinkThread(selection, ("10.0.0.5", 8000)) as (host, port):
        ...
"""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Protocol

from tippingpoint.harness.links.proxy import LinkProxy
from tippingpoint.harness.links.record import LinkRecord, ShaperKind
from tippingpoint.harness.links.select import ShaperSelection
from tippingpoint.harness.links.tc import TcLink


class Link(Protocol):
    """A started link: clients connect to what :meth:`start` returns."""

    async def start(self) -> tuple[str, int]:
        """Begin shaping; the (host, port) on 127.0.0.1 to connect to."""
        ...

    async def stop(self) -> LinkRecord:
        """End shaping; what the link did."""
        ...

    @property
    def started_s(self) -> float:
        """When shaping began (``time.monotonic``); outage windows are counted from here."""
        ...


def open_link(
    selection: ShaperSelection,
    upstream: tuple[str, int],
    *,
    rto_min_ms: float = 200.0,
    listen: socket.socket | None = None,
) -> Link:
    """The link ``selection`` chose, relaying to ``upstream`` (not yet started). ``listen``:
    a listening socket on 127.0.0.1 to accept on (reserve the entry's port before the link
    starts), else a free port is taken at start."""
    if selection.kind is ShaperKind.PROXY:
        return LinkProxy(
            selection.spec, upstream, reason=selection.reason, rto_min_ms=rto_min_ms, listen=listen
        )
    assert selection.caps is not None
    return TcLink(
        selection.spec, upstream, selection.kind, selection.caps, selection.reason, listen=listen
    )


class LinkThread:
    """A link on its own event loop in a daemon thread; a context manager yielding the entry."""

    def __init__(
        self,
        selection: ShaperSelection,
        upstream: tuple[str, int],
        rto_min_ms: float = 200.0,
        listen: socket.socket | None = None,
    ) -> None:
        self.link = open_link(selection, upstream, rto_min_ms=rto_min_ms, listen=listen)
        self.record: LinkRecord | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tp-link", daemon=True)

    def start(self) -> tuple[str, int]:
        """Start the thread and the link; the entry (host, port)."""
        self._thread.start()
        fut: Future[tuple[str, int]] = asyncio.run_coroutine_threadsafe(
            self.link.start(), self._loop
        )
        try:
            return fut.result(timeout=30)
        except BaseException:
            self._end()
            raise

    def stop(self) -> LinkRecord:
        """Stop the link and the thread; the record (also kept in :attr:`record`)."""
        if self.record is None:
            fut = asyncio.run_coroutine_threadsafe(self.link.stop(), self._loop)
            try:
                self.record = fut.result(timeout=60)
            finally:
                self._end()
        return self.record

    def _end(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> tuple[str, int]:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
