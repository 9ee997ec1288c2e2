"""The user-space link on loopback against real far ends: added RTT, goodput, loss, outages
(seen by tippingpoint's own HTTP client and open loop), and the record of what it did."""

from __future__ import annotations

import asyncio
import math
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tippingpoint.core.links import LinkSpec, OutageMode, OutageWindow
from tippingpoint.harness.links.farend import BODY, start_bulk, start_echo
from tippingpoint.harness.links.host import LinkThread
from tippingpoint.harness.links.process import LinkProcess
from tippingpoint.harness.links.proxy import LinkProxy
from tippingpoint.harness.links.record import LinkRecord, ShaperKind
from tippingpoint.harness.links.select import select_shaper


def spec(name: str, **kw: object) -> LinkSpec:
    base: dict[str, object] = {"name": name, "user_defined": True}
    base.update({"delay_up_ms": 0.0, "delay_down_ms": 0.0})
    base.update(kw)
    return LinkSpec.model_validate(base)


async def ping_times(port: int, n: int, warm: int = 0) -> list[float]:
    """``n`` sequential 100-byte echoes on one connection, after ``warm`` unmeasured ones (and
    the connection's first, which carries the handshake)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        for i in range(n + warm + 1):
            t = time.perf_counter()
            writer.write(b"x" * 100)
            await reader.readexactly(100)
            if i > warm:
                out.append(time.perf_counter() - t)
    finally:
        writer.close()
    return out


@pytest.mark.parametrize(
    ("rtt_ms", "jitter_ms"), [(20.0, 0.0), (50.0, 5.0), (150.0, 0.0)], ids=["20", "50j", "150"]
)
def test_proxy_adds_the_profiles_rtt(rtt_ms: float, jitter_ms: float) -> None:
    link = spec(f"rtt{rtt_ms:g}", delay_up_ms=rtt_ms / 2, delay_down_ms=rtt_ms / 2)
    link = link.model_copy(update={"jitter_ms": jitter_ms})

    async def main() -> tuple[float, float, LinkRecord]:
        srv, port = await start_echo()
        direct = await ping_times(port, 30)
        proxy = LinkProxy(link, ("127.0.0.1", port))
        _, entry = await proxy.start()
        # three connections at once; the first pings let the proxy learn its wake-up lateness
        runs = await asyncio.gather(*(ping_times(entry, 8, warm=4) for _ in range(3)))
        record = await proxy.stop()
        srv.close()
        shaped = [t for run in runs for t in run]
        return statistics.median(direct), statistics.median(shaped), record

    direct, shaped, record = asyncio.run(main())
    added_ms = (shaped - direct) * 1e3
    assert added_ms == pytest.approx(rtt_ms, rel=0.10), f"added {added_ms:.2f} ms"
    assert record.connections == 3 and record.shaper is ShaperKind.PROXY
    assert record.handshake_rtt is not None
    assert record.handshake_rtt.p50_ms == pytest.approx(rtt_ms, rel=0.10, abs=1.0)
    assert record.up.bytes == record.down.bytes == 3 * 13 * 100


async def download_mbps(port: int) -> tuple[float, int]:
    """Goodput of one bulk download measured by the client: bytes after the first read over
    the time from the first read to the last."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"g")
    first = last = 0.0
    n = n0 = 0
    while data := await reader.read(65536):
        now = time.perf_counter()
        if not n:
            first, n0 = now, len(data)
        n += len(data)
        last = now
    writer.close()
    return (n - n0) * 8 / (last - first) / 1e6, n


class _Sink(asyncio.Protocol):
    arrivals: list[tuple[float, int]]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.arrivals = []
        _Sink.last = self

    def data_received(self, data: bytes) -> None:
        self.arrivals.append((time.perf_counter(), len(data)))

    last: _Sink


def test_rate_limited_goodput_each_way() -> None:
    async def main() -> tuple[float, float, LinkRecord, float, LinkRecord]:
        # down: 10 Mbit/s, 1.5 s of data
        down = spec("down10", rate_down_mbps=10.0, rate_up_mbps=10.0)
        srv, port = await start_bulk(int(10e6 / 8 * 1.5))
        proxy = LinkProxy(down, ("127.0.0.1", port))
        _, entry = await proxy.start()
        got_down, n = await download_mbps(entry)
        rec_down = await proxy.stop()
        srv.close()
        assert n == int(10e6 / 8 * 1.5)
        # up: 1.6 Mbit/s, 1.5 s of data, measured by the receiving server
        up = spec("up1.6", rate_up_mbps=1.6, rate_down_mbps=1.6)
        sink = await asyncio.get_running_loop().create_server(_Sink, "127.0.0.1", 0)
        proxy = LinkProxy(up, ("127.0.0.1", int(sink.sockets[0].getsockname()[1])))
        _, entry = await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", entry)
        writer.write(b"u" * int(1.6e6 / 8 * 1.5))
        writer.write_eof()
        assert await reader.read() == b""  # the sink closes once it has read everything
        writer.close()
        rec_up = await proxy.stop()
        sink.close()
        arr = _Sink.last.arrivals
        got_up = sum(n for _, n in arr[1:]) * 8 / (arr[-1][0] - arr[0][0]) / 1e6
        return got_down, got_up, rec_down, 0.0, rec_up

    got_down, got_up, rec_down, _, rec_up = asyncio.run(main())
    assert got_down == pytest.approx(10.0, rel=0.10)
    assert got_up == pytest.approx(1.6, rel=0.10)
    # the record measures the same goodput where the bytes leave the link
    assert rec_down.down.goodput_mbps == pytest.approx(10.0, rel=0.10)
    assert rec_up.up.goodput_mbps == pytest.approx(1.6, rel=0.10)
    assert rec_up.up.bytes == int(1.6e6 / 8 * 1.5)


def binomial_interval(n: int, p: float, level: float = 0.99) -> tuple[int, int]:
    """The central ``level`` interval of Binomial(n, p): P(X < lo) and P(X > hi) each at most
    (1 - level) / 2."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    tail = (1 - level) / 2
    cdf, lo = 0.0, 0
    for k, q in enumerate(pmf):
        if cdf + q > tail:
            lo = k
            break
        cdf += q
    cdf, hi = 0.0, n
    for k in range(n, -1, -1):
        if cdf + pmf[k] > tail:
            hi = k
            break
        cdf += pmf[k]
    return lo, hi


def test_random_loss_stalls_round_trips_at_the_set_rate() -> None:
    loss, n = 0.05, 600
    link = spec("lossy", loss=loss, seed=5)

    async def main() -> tuple[list[float], LinkRecord]:
        srv, port = await start_echo()
        proxy = LinkProxy(link, ("127.0.0.1", port), rto_min_ms=20.0)
        _, entry = await proxy.start()
        times = await ping_times(entry, n)
        record = await proxy.stop()
        srv.close()
        return times, record

    times, record = asyncio.run(main())
    # one segment each way: a round trip stalls when either is lost (>= the 20 ms timeout)
    stalled = sum(t > 0.010 for t in times)
    lo, hi = binomial_interval(n, 1 - (1 - loss) ** 2)
    assert lo <= stalled <= hi, f"{stalled} stalled round trips, 99% interval [{lo}, {hi}]"
    assert record.up.stalls is not None and record.down.stalls is not None
    assert record.up.lost_segments is not None and record.up.lost_segments > 0


@contextmanager
def http_far_end() -> Iterator[int]:
    """The minimal HTTP server in its own process on 127.0.0.1: its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tippingpoint.harness.links.farend", "http"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_outages_show_as_errors_by_kind_and_in_open_loop_latency() -> None:
    from tippingpoint.backends.http import HttpBackend
    from tippingpoint.core.kinds import ScenarioKind
    from tippingpoint.core.schema import ArrivalProcess, StopRule
    from tippingpoint.core.types import OptionValue
    from tippingpoint.harness.loadgen import closed_loop, open_loop

    windows = (
        OutageWindow(start_s=2.5, duration_s=0.15, mode=OutageMode.BLACKHOLE),
        OutageWindow(start_s=3.0, duration_s=0.2, mode=OutageMode.RESET),
        OutageWindow(start_s=3.6, duration_s=0.8, mode=OutageMode.BLACKHOLE),
    )
    link = spec("flaky", delay_up_ms=1.0, delay_down_ms=1.0, outages=windows)
    selection = select_shaper(link, "proxy")
    entry = socket.socket()
    entry.bind(("127.0.0.1", 0))
    entry.listen(128)
    with http_far_end() as port:
        opts: dict[str, OptionValue] = {
            "endpoint": f"http://127.0.0.1:{entry.getsockname()[1]}",
            "protocol": "template",
            "path": "/",
            "method": "GET",
            "check_ready": False,
            "client": "raw",
            "timeout_s": 0.4,
            "connect_timeout_s": 0.4,
        }
        session = HttpBackend().load(Path("static"), opts)
        shaped = LinkThread(selection, ("127.0.0.1", port), listen=entry)
        try:
            send = session.request_fn(ScenarioKind.SERVER, [])
            shaped.start()
            # four keep-alive connections, then 60 requests/s for 4.9 s (the windows start 2.5 s
            # after the link: room for a slow warm-up on a loaded machine)
            session.run(
                closed_loop(
                    send, 4, StopRule(min_queries=40, min_duration_s=0.0, max_duration_s=10)
                ),
                30,
            )
            rule = StopRule(min_queries=1, min_duration_s=4.9, max_duration_s=10)
            run = session.run(open_loop(send, 60.0, rule, arrival=ArrivalProcess.CONSTANT), 30)
        finally:
            session.close()
            record = shaped.stop()
    sched = run.scheduled_ns / 1e9 - shaped.link.started_s
    assert sched[0] < 2.3, "the load started too late to compare with the outage windows"
    kinds = Counter(e for e in run.errors if e is not None)
    assert kinds["connection"] >= 1, kinds  # the reset window
    assert kinds["timeout"] >= 1, kinds  # the long black hole outlasts the 0.4 s timeout
    ok = run.ok
    lat_ms = run.latency_ns / 1e6
    calm = ok & (sched < 2.45)
    hole = (sched >= 2.5) & (sched < 2.62)  # less a margin for a late send
    assert calm.sum() >= 5
    assert float(np.median(lat_ms[calm])) < 20
    # a request scheduled in the short black hole waits for the retransmission after it,
    # or times out: none is answered as if the link were up
    assert (ok & hole).sum() >= 1
    assert bool(np.all(lat_ms[ok & hole] > 100))
    seen = {(o.start_s, o.mode): o for o in record.outages}
    reset = seen[(3.0, OutageMode.RESET)]
    assert reset.connections_reset + reset.connections_refused >= 1
    assert seen[(2.5, OutageMode.BLACKHOLE)].segments_held >= 1
    assert seen[(3.6, OutageMode.BLACKHOLE)].segments_held >= 1
    assert record.resets.get("outage-reset", 0) + record.resets.get("outage-refused", 0) >= 1


def test_link_in_its_own_process_returns_its_record() -> None:
    selection = select_shaper(spec("p20", delay_up_ms=10.0, delay_down_ms=10.0), "proxy")
    with http_far_end() as port:
        link = LinkProcess(selection, ("127.0.0.1", port))
        with link as (_, entry), socket.create_connection(("127.0.0.1", entry)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while not got.endswith(BODY):
                got += s.recv(4096)
    record = link.record
    assert record is not None and record.connections == 1
    assert record.shaper_reason == selection.reason
    assert record.handshake_rtt is not None
    assert record.handshake_rtt.p50_ms == pytest.approx(20.0, rel=0.1, abs=1.0)
    assert LinkRecord.model_validate_json(record.model_dump_json()) == record
