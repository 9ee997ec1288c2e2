"""The user-space link: an asyncio TCP proxy on loopback that applies a :class:`LinkSpec` per
direction and records what the link did.

The client connects to the proxy's loopback port; the proxy connects to the endpoint and
relays both directions, each through a :class:`~tippingpoint.harness.links.model.DirectionModel`
(delay, jitter, loss as stalls, token-bucket rate, black-hole outages). Connection set-up costs
the emulated SYN/SYN-ACK exchange (one RTT, more when a SYN is lost); reset outages reset every
open connection and refuse new ones for the window.

Cheap per chunk: protocols rather than streams, one ordered queue and at most one timer per
direction of a connection, and a zero-delay profile writes straight through (no queue, no
timer). It listens on 127.0.0.1 only; the far end is whatever the caller names.

Usage::

    proxy = LinkProxy(spec, ("127.0.0.1", 8000))
    host, port = await proxy.start()     # connect clients here
    ...
    record = await proxy.stop()          # LinkRecord: bytes, goodput, stalls, resets, ...
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import Counter, deque
from collections.abc import Awaitable, Callable

from tippingpoint.core.links import LinkSpec, OutageMode
from tippingpoint.harness.links.model import DirectionModel
from tippingpoint.harness.links.record import (
    DirectionRecord,
    LatencySummary,
    LinkRecord,
    OutageRecord,
    ShaperKind,
)

SocketFactory = Callable[[], Awaitable[socket.socket]]
"""Creates an unconnected TCP socket (e.g. inside a network namespace) for the upstream leg."""

_EOF = b""
_CLOSE = None
_RESET = 0
_Item = bytes | int | None
_LINGER_RST = struct.pack("ii", 1, 0)
MIN_QUEUE_BYTES = 256 * 1024
UNLIMITED_QUEUE_BYTES = 4 * 1024 * 1024


def _reset(transport: asyncio.BaseTransport | None) -> None:
    """Close ``transport`` with a TCP RST (SO_LINGER 0), not a FIN."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        except OSError:
            pass
    transport.abort()  # type: ignore[attr-defined]  # every stream transport has abort()


class _WakeBias:
    """How early to arm delivery timers so that their median delivery is on time.

    An event loop wakes late (epoll's millisecond rounding, the kernel's timer slack, a busy
    CPU: 0.2-5 ms on a loaded 2-core VM). Each timer that fires observes its lateness; the bias
    steps toward the median lateness (a stochastic median estimate whose step is a quarter of
    the mean absolute lateness, so it settles within tens of deliveries), so deliveries are
    early as often as late and the added delay's median is the profile's.
    """

    __slots__ = ("bias", "spread")
    MIN_STEP_S = 20e-6
    MAX_S = 0.010

    def __init__(self) -> None:
        self.bias = 0.0
        self.spread = 0.0

    def observe(self, late_s: float) -> None:
        self.spread += 0.1 * (abs(late_s) - self.spread)
        step = max(self.MIN_STEP_S, self.spread / 4)
        if late_s > 0:
            self.bias = min(self.bias + step, self.MAX_S)
        else:
            self.bias = max(self.bias - step, 0.0)


class _Direction:
    """One direction's model plus its delivery counters over every connection.

    Goodput is measured where bytes leave the link: deliveries less than ``BUSY_GAP_S`` apart
    belong to one busy period; a period's time and its bytes after its first delivery count.
    """

    __slots__ = (
        "busy_bytes",
        "busy_s",
        "delivered",
        "early",
        "high",
        "last_write",
        "low",
        "model",
        "wake",
    )
    BUSY_GAP_S = 1.0

    def __init__(self, model: DirectionModel, queue_bytes: int, wake: _WakeBias) -> None:
        self.model = model
        self.wake = wake
        self.early = min(wake.MAX_S, model.delay_s)
        self.delivered = 0
        self.last_write = -1.0
        self.busy_s = 0.0
        self.busy_bytes = 0
        self.high = queue_bytes
        self.low = queue_bytes // 2

    def wrote(self, now: float, n: int) -> None:
        """Count ``n`` bytes delivered at ``now``."""
        self.delivered += n
        gap = now - self.last_write
        if gap < self.BUSY_GAP_S:
            self.busy_s += gap
            self.busy_bytes += n
        self.last_write = now


class _Pipe:
    """The bytes of one connection in one direction: an ordered queue of timed deliveries."""

    __slots__ = (
        "conn",
        "direction",
        "dst",
        "dst_leg_client_side",
        "dst_paused",
        "last_at",
        "loop",
        "model",
        "not_before",
        "paused",
        "qbytes",
        "queue",
        "src",
        "timer",
    )

    def __init__(
        self, conn: _Conn, direction: _Direction, not_before: float, to_client: bool
    ) -> None:
        self.conn = conn
        self.dst_leg_client_side = to_client
        self.direction = direction
        self.model = direction.model
        self.loop = conn.loop
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.queue: deque[tuple[float, _Item]] = deque()
        self.qbytes = 0
        self.timer: asyncio.TimerHandle | None = None
        self.last_at = 0.0
        self.not_before = not_before
        self.paused = False
        self.dst_paused = False

    def feed(self, data: bytes) -> None:
        """Bytes read from the source, to deliver to the destination as the link would."""
        dst = self.dst
        if self.model.trivial and dst is not None and not self.queue:
            dst.write(data)
            self.direction.wrote(self.loop.time(), len(data))
            return
        now = self.loop.time()
        t = now if now >= self.not_before else self.not_before
        slices = self.model.schedule(t, len(data))
        if len(slices) == 1:
            self._push(slices[0].at, data)
        else:
            view = memoryview(data)
            pos = 0
            for s in slices:
                self._push(s.at, bytes(view[pos : pos + s.nbytes]))
                pos += s.nbytes
        self._flow()

    def mark(self, item: _Item) -> None:
        """Queue an end of stream (EOF, close or reset) behind the bytes already queued."""
        now = self.loop.time()
        at = max(now, self.not_before) + self.model.delay_s if not self.model.trivial else now
        self._push(at, item)

    def drop(self) -> None:
        """Forget everything queued (the destination is gone)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.qbytes = 0

    def _push(self, at: float, item: _Item) -> None:
        if at < self.last_at:
            at = self.last_at  # a TCP stream is delivered in order
        self.last_at = at
        self.queue.append((at, item))
        if isinstance(item, bytes):
            self.qbytes += len(item)
        if self.timer is None:
            self.timer = self.loop.call_at(
                at - min(self.direction.wake.bias, self.direction.early), self.fire
            )

    def fire(self) -> None:
        """Deliver everything due; re-arm for the next item."""
        self.timer = None
        dst = self.dst
        if dst is None:
            return  # the upstream leg is still connecting: it fires again once connected
        q = self.queue
        now = self.loop.time()
        d = self.direction
        if q:
            d.wake.observe(now - q[0][0])
        edge = now + min(d.wake.bias, d.early)
        while q and q[0][0] <= edge:
            _, item = q.popleft()
            if isinstance(item, bytes):
                if item:
                    dst.write(item)
                    self.qbytes -= len(item)
                    d.wrote(now, len(item))
                else:
                    self.conn.eof_to(self.dst_leg_client_side, dst)
            elif item is _CLOSE:
                dst.close()
            else:
                _reset(dst)
        if q:
            self.timer = self.loop.call_at(q[0][0] - min(d.wake.bias, d.early), self.fire)
        self._flow()

    def _flow(self) -> None:
        src = self.src
        if src is None:
            return
        d = self.direction
        if self.paused:
            if not self.dst_paused and self.qbytes <= d.low and not src.is_closing():
                self.paused = False
                src.resume_reading()
        elif (self.qbytes > d.high or self.dst_paused) and not src.is_closing():
            self.paused = True
            src.pause_reading()


class _Leg(asyncio.Protocol):
    """One socket of a connection: the client's (accepted) or the endpoint's (connected)."""

    def __init__(self, conn: _Conn, client_side: bool) -> None:
        self.conn = conn
        self.client_side = client_side
        self.transport: asyncio.Transport | None = None
        self.got_eof = False
        self.sent_eof = False
        self.out: _Pipe = conn.up if client_side else conn.down
        self.into: _Pipe = conn.down if client_side else conn.up

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.out.src = transport
        if self.client_side:
            self.conn.accepted(transport)
        else:
            self.conn.connected(transport)

    def data_received(self, data: bytes) -> None:
        self.out.feed(data)

    def eof_received(self) -> bool:
        self.got_eof = True
        self.out.mark(_EOF)
        if self.sent_eof and self.transport is not None:
            self.transport.close()  # both directions are finished
        return True  # keep the other direction open (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.leg_lost(self, exc)

    def pause_writing(self) -> None:
        self.into.dst_paused = True
        self.into._flow()

    def resume_writing(self) -> None:
        self.into.dst_paused = False
        self.into._flow()


class _Conn:
    """One client connection through the link."""

    def __init__(self, proxy: LinkProxy) -> None:
        self.proxy = proxy
        self.loop = proxy.loop
        self.t_accept = self.loop.time()
        self.established = proxy.handshake(self.t_accept)
        self.up = _Pipe(self, proxy.dir_up, self.established, False)
        self.down = _Pipe(self, proxy.dir_down, 0.0, True)
        self.client: _Leg = _Leg(self, True)
        self.upstream: _Leg | None = None
        self.open_legs = 0
        self.task: asyncio.Task[None] | None = None

    def accepted(self, transport: asyncio.Transport) -> None:
        self.open_legs += 1
        self.down.dst = transport
        if self.proxy.refusing():
            self.proxy.refused += 1
            self.proxy.resets["outage-refused"] += 1
            _reset(transport)
            return
        self.proxy.conns.add(self)
        self.proxy.connections += 1
        self.task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        proxy = self.proxy
        leg = _Leg(self, False)
        self.upstream = leg
        try:
            if proxy.upstream_socket is not None:
                sock = await proxy.upstream_socket()
                sock.setblocking(False)
                await self.loop.sock_connect(sock, proxy.upstream)
                await self.loop.create_connection(lambda: leg, sock=sock)
            else:
                await self.loop.create_connection(lambda: leg, *proxy.upstream)
        except OSError as exc:
            kind = "refused" if isinstance(exc, ConnectionRefusedError) else type(exc).__name__
            proxy.connect_errors[kind] += 1
            _reset(self.client.transport)
        except asyncio.CancelledError:
            _reset(self.client.transport)

    def connected(self, transport: asyncio.Transport) -> None:
        self.open_legs += 1
        self.up.dst = transport
        now = self.loop.time()
        self.proxy.handshakes.append(max(now, self.established) - self.t_accept)
        if self.up.queue and self.up.timer is None:
            self.up.fire()

    def leg_lost(self, leg: _Leg, exc: Exception | None) -> None:
        self.open_legs -= 1
        other = self.upstream if leg.client_side else self.client
        leg.into.drop()  # nothing more can reach this leg
        leg.into.dst = None
        gone = other is not None and other.transport is not None and other.transport.is_closing()
        if not gone:
            if exc is None:
                leg.out.mark(_CLOSE)
            else:
                self.proxy.resets["client" if leg.client_side else "endpoint"] += 1
                leg.out.mark(_RESET)
        if self.open_legs <= 0:
            self.proxy.conns.discard(self)

    def eof_to(self, client_side: bool, transport: asyncio.Transport) -> None:
        """Deliver an end of stream to one leg; close it once it has sent its own."""
        leg = self.client if client_side else self.upstream
        if leg is None:
            return
        leg.sent_eof = True
        if leg.got_eof or not transport.can_write_eof():
            transport.close()
        else:
            transport.write_eof()

    def close(self) -> None:
        """Close both legs now, with a FIN (the shaper stops)."""
        self.up.drop()
        self.down.drop()
        for leg in (self.client, self.upstream):
            if leg is not None and leg.transport is not None:
                leg.transport.close()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def reset(self) -> None:
        """Reset both legs now (a reset outage)."""
        self.up.drop()
        self.down.drop()
        for leg in (self.client, self.upstream):
            if leg is not None:
                _reset(leg.transport)
        if self.task is not None and not self.task.done():
            self.task.cancel()


class LinkProxy:
    """A shaped TCP relay from a loopback port to ``upstream``; see the module docstring.

    ``listen``: an already bound and listening socket to accept on (e.g. inside a namespace),
    else 127.0.0.1 on a free port. ``upstream_socket``: makes the upstream leg's socket (e.g.
    inside a namespace), else the loop connects normally. ``rto_min_ms``: the endpoint's minimum
    retransmission timeout (Linux: 200 ms; ``ip route ... rto_min``).
    """

    def __init__(
        self,
        spec: LinkSpec,
        upstream: tuple[str, int],
        *,
        kind: ShaperKind = ShaperKind.PROXY,
        reason: str = "",
        rto_min_ms: float = 200.0,
        listen: socket.socket | None = None,
        upstream_socket: SocketFactory | None = None,
    ) -> None:
        self.spec = spec
        self.upstream = upstream
        self.kind = kind
        self.reason = reason
        self.rto_min_ms = rto_min_ms
        self.listen_sock = listen
        self.upstream_socket = upstream_socket
        self.conns: set[_Conn] = set()
        self.connections = 0
        self.refused = 0
        self.handshakes: list[float] = []
        self.resets: Counter[str] = Counter()
        self.connect_errors: Counter[str] = Counter()
        self.outage_counts: dict[tuple[float, OutageMode], list[int]] = {}
        self._server: asyncio.base_events.Server | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._t0 = 0.0
        self._t_stop: float | None = None

    # -- set-up -----------------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:
        """Listen and return the (host, port) clients connect to."""
        self.loop = asyncio.get_running_loop()
        self._t0 = self.loop.time()
        spec = self.spec
        wake = _WakeBias()
        self.dir_up = _Direction(
            DirectionModel(spec, True, self._t0, self.rto_min_ms), self._queue_bytes(True), wake
        )
        self.dir_down = _Direction(
            DirectionModel(spec, False, self._t0, self.rto_min_ms), self._queue_bytes(False), wake
        )
        self._trivial_handshake = self.dir_up.model.trivial and self.dir_down.model.trivial
        if self.listen_sock is not None:
            self._server = await self.loop.create_server(
                lambda: _Conn(self).client, sock=self.listen_sock
            )
        else:
            self._server = await self.loop.create_server(
                lambda: _Conn(self).client, "127.0.0.1", 0, backlog=1024
            )
        for o in spec.outages:
            if o.mode is OutageMode.RESET:
                self._arm_reset(o.start_s, o.duration_s, o.every_s)
        addr = self._server.sockets[0].getsockname()
        return str(addr[0]), int(addr[1])

    @property
    def started_s(self) -> float:
        """When shaping began, on the event loop's clock (``time.monotonic``, the clock of
        ``time.perf_counter`` on Linux): outage windows are counted from here."""
        return self._t0

    def _queue_bytes(self, up: bool) -> int:
        spec = self.spec
        rate = spec.rate_up_mbps if up else spec.rate_down_mbps
        if rate is None:
            return UNLIMITED_QUEUE_BYTES
        delay_s = (spec.delay_up_ms if up else spec.delay_down_ms) / 1e3
        return max(MIN_QUEUE_BYTES, int(2 * rate * 1e6 / 8 * (delay_s + 0.1)))

    def _arm_reset(self, start_s: float, duration_s: float, every_s: float | None) -> None:
        def fire() -> None:
            counts = self.outage_counts.setdefault((round(start_s, 6), OutageMode.RESET), [0, 0])
            for conn in list(self.conns):
                conn.reset()
                counts[0] += 1
                self.resets["outage-reset"] += 1
            self.conns.clear()
            if every_s is not None:
                self._arm_reset(start_s + every_s, duration_s, every_s)

        self._timers.append(self.loop.call_at(self._t0 + start_s, fire))

    # -- per connection ---------------------------------------------------------------------
    def handshake(self, now: float) -> float:
        """When the emulated SYN / SYN-ACK exchange started at ``now`` completes."""
        if self._trivial_handshake:
            return now
        syn = self.dir_up.model.segment(now)
        return self.dir_down.model.segment(syn)

    def refusing(self) -> bool:
        """Whether a reset outage is in force now (new connections are reset)."""
        t = self.loop.time() - self._t0
        for o in self.spec.outages:
            if o.mode is OutageMode.RESET:
                hit = o.active(t)
                if hit is not None:
                    counts = self.outage_counts.setdefault(
                        (round(hit[0], 6), OutageMode.RESET), [0, 0]
                    )
                    counts[1] += 1
                    return True
        return False

    # -- tear-down --------------------------------------------------------------------------
    async def stop(self, grace_s: float | None = None) -> LinkRecord:
        """Stop accepting, let queued bytes arrive (for ``grace_s``, default the longest one-way
        delay plus 0.25 s), close what is still open (FIN), and return the record."""
        self._t_stop = self.loop.time()
        for t in self._timers:
            t.cancel()
        if self._server is not None:
            self._server.close()
        if grace_s is None:
            grace_s = max(self.spec.delay_up_ms, self.spec.delay_down_ms) / 1e3 + 0.25
        deadline = self.loop.time() + grace_s
        while self.loop.time() < deadline and any(c.up.queue or c.down.queue for c in self.conns):
            await asyncio.sleep(0.005)
        tasks = [c.task for c in self.conns if c.task is not None and not c.task.done()]
        for conn in list(self.conns):
            conn.close()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.sleep(0)
        return self.record()

    def record(self) -> LinkRecord:
        """What the link did so far."""
        now = self._t_stop if self._t_stop is not None else self.loop.time()
        window = max(now - self._t0, 1e-9)

        def direction(d: _Direction) -> DirectionRecord:
            c = d.model.counters
            counted = not d.model.trivial
            return DirectionRecord(
                bytes=d.delivered,
                mean_mbps=d.delivered * 8 / window / 1e6,
                goodput_mbps=d.busy_bytes * 8 / d.busy_s / 1e6 if d.busy_s > 0 else None,
                busy_s=d.busy_s,
                segments=c.segments if counted else None,
                lost_segments=c.lost_segments if counted else None,
                stalls=c.stalls if counted else None,
                stall_s=c.stall_s if counted else None,
            )

        held = Counter(self.dir_up.model.counters.blackholed)
        held.update(self.dir_down.model.counters.blackholed)
        outages = []
        for o in self.spec.outages:
            for begin, end in o.occurrences(window):
                counts = self.outage_counts.get((round(begin, 6), o.mode), [0, 0])
                outages.append(
                    OutageRecord(
                        start_s=begin,
                        end_s=end,
                        mode=o.mode,
                        connections_reset=counts[0],
                        connections_refused=counts[1],
                        segments_held=held.get(round(begin, 6), 0),
                    )
                )
        return LinkRecord(
            profile=self.spec,
            shaper=self.kind,
            shaper_reason=self.reason,
            window_s=window,
            connections=self.connections,
            handshake_rtt=LatencySummary.of(self.handshakes),
            up=direction(self.dir_up),
            down=direction(self.dir_down),
            resets=dict(self.resets),
            connect_errors=dict(self.connect_errors),
            outages=tuple(sorted(outages, key=lambda r: r.start_s)),
        )
