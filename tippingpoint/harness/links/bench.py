"""Link benchmark: what the user-space proxy costs and whether it keeps up.

Run with ``make bench-links``. A minimal HTTP/1.1 server runs in its own process on loopback;
tippingpoint's HTTP client (raw) and load generator send to it directly and through the proxy
at a zero-delay profile, hosted three ways (on the client's own event loop, on its own loop in a
thread of this process, in its own process), then through a 50 ms profile. It prints, for
each host:

- the single-stream p50 with and without the proxy, the difference, and its ratio to the
  50 us target (<= 1.00 meets it);
- the open loop at 2,000 requests/s through the proxy: achieved rate over offered (target
  >= 0.99), share sent over 1 ms late (over 1% invalidates the run), errors, and the p50
  added against the direct open loop's;
- the 50 ms profile's added median against 50 ms (its ratio; 0.90-1.10 is on target);
- the thread against the client's own loop (what ``run --network`` uses against what it
  could use): the single-stream p50 difference, and each open loop's late share, with the
  machine's load average (on a loaded machine the open loop is invalid for every host).

This is a benchmark: it prints, it asserts nothing. On a busy machine every figure is worse.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from tippingpoint.core.links import LinkSpec
from tippingpoint.harness.links.farend import BODY
from tippingpoint.harness.links.host import LinkThread
from tippingpoint.harness.links.process import LinkProcess
from tippingpoint.harness.links.proxy import LinkProxy
from tippingpoint.harness.links.select import select_shaper
from tippingpoint.harness.loadgen import LoadRun

TARGET_ADDED_US = 50.0
OPEN_RATE = 2000.0


def _farend() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tippingpoint.harness.links.farend", "http"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def _runs(
    port: int, seconds: float, rate: float, same_loop: LinkProxy | None = None
) -> tuple[LoadRun, LoadRun]:
    """(single-stream, open loop at ``rate``) against 127.0.0.1:``port``; with ``same_loop``,
    that proxy (listening on ``port``) runs on the client's own event loop."""
    from tippingpoint.backends.http import HttpBackend
    from tippingpoint.core.kinds import ScenarioKind
    from tippingpoint.core.schema import ArrivalProcess, StopRule
    from tippingpoint.core.types import OptionValue
    from tippingpoint.harness.loadgen import closed_loop, open_loop

    opts: dict[str, OptionValue] = {
        "endpoint": f"http://127.0.0.1:{port}",
        "protocol": "template",
        "path": "/",
        "method": "GET",
        "check_ready": False,
        "max_connections": 512,
        "client": "raw",
    }
    session = HttpBackend().load(Path("static"), opts)
    try:
        if same_loop is not None:
            session.run(same_loop.start(), 30)
        send = session.request_fn(ScenarioKind.SINGLE_STREAM, [])
        rule = StopRule(min_queries=1, min_duration_s=seconds, max_duration_s=60)
        warm = StopRule(min_queries=500, min_duration_s=0.3, max_duration_s=10)
        limit = seconds + 60
        session.run(closed_loop(send, 1, warm), limit)
        single = session.run(closed_loop(send, 1, rule), limit)
        session.run(open_loop(send, rate, warm, arrival=ArrivalProcess.POISSON), limit)
        fast = session.run(open_loop(send, rate, rule, arrival=ArrivalProcess.POISSON), limit)
        if same_loop is not None:
            session.run(same_loop.stop(), 30)
    finally:
        session.close()
    return single, fast


def _median_rtt_ms(port: int, n: int) -> float:
    """Median time of ``n`` sequential GETs on one keep-alive connection (the first, which
    includes the connection set-up, left out)."""
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    times = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n + 1):
            t = time.perf_counter()
            s.sendall(request)
            got = b""
            while not got.endswith(BODY):
                got += s.recv(4096)
            times.append(time.perf_counter() - t)
    return float(np.median(times[1:])) * 1e3


def _describe(load: LoadRun, rate: float) -> str:
    kinds = Counter(e for e in load.errors if e is not None)
    errors = ", ".join(f"{k} {n}" for k, n in kinds.most_common()) or "none"
    invalid = " (INVALID: the generator set the timing)" if load.lag_invalid else ""
    return (
        f"achieved/offered {_rate(load) / rate:.3f}, p50 {_p50_us(load):.1f} us, "
        f"{load.late_fraction:.2%} sent >1 ms late{invalid}, errors: {errors}"
    )


def _p50_us(load: LoadRun) -> float:
    ok = load.latency_ns[load.ok]
    return float(np.median(ok)) / 1e3 if len(ok) else float("nan")


def _rate(load: LoadRun) -> float:
    end = load.end_ns[load.ok]
    if not len(end):
        return 0.0
    return float(load.ok.sum() / ((end.max() - load.window_start_ns) / 1e9))


def main(argv: list[str] | None = None) -> int:
    """Run the three comparisons and print their ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each run")
    parser.add_argument("--rate", type=float, default=OPEN_RATE, help="open-loop rate")
    args = parser.parse_args(argv)
    proc, port = _farend()
    zero = select_shaper(
        LinkSpec(name="zero", user_defined=True, delay_up_ms=0, delay_down_ms=0), "proxy"
    )
    fifty = select_shaper(
        LinkSpec(name="rtt-50", user_defined=True, delay_up_ms=25, delay_down_ms=25), "proxy"
    )
    try:
        direct = _runs(port, args.seconds, args.rate)
        entry_sock = socket.socket()
        entry_sock.bind(("127.0.0.1", 0))
        entry_sock.listen(1024)
        proxy = LinkProxy(zero.spec, ("127.0.0.1", port), listen=entry_sock)
        shaped = {
            "the client's event loop": _runs(
                entry_sock.getsockname()[1], args.seconds, args.rate, proxy
            )
        }
        for mode, host in (("a thread", LinkThread), ("a process", LinkProcess)):
            with host(zero, ("127.0.0.1", port)) as (_, entry):
                shaped[mode] = _runs(entry, args.seconds, args.rate)
        with LinkThread(fifty, ("127.0.0.1", port)) as (_, entry):
            added_50 = _median_rtt_ms(entry, 40) - _median_rtt_ms(port, 40)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)

    print(f"far end: HTTP/1.1 200 on 127.0.0.1 in its own process ({args.seconds:g} s per run)")
    d_single, d_open = direct
    print(
        f"direct: single-stream p50 {_p50_us(d_single):.1f} us; open loop at {args.rate:,.0f}/s "
        f"{_describe(d_open, args.rate)}"
    )
    for mode, (single, fast) in shaped.items():
        added = _p50_us(single) - _p50_us(d_single)
        open_added = _p50_us(fast) - _p50_us(d_open)
        print(
            f"proxy on {mode} (zero delay): single-stream p50 {_p50_us(single):.1f} us, added "
            f"{added:.1f} us, ratio to the {TARGET_ADDED_US:g} us target "
            f"{added / TARGET_ADDED_US:.2f}"
        )
        print(
            f"  open loop at {args.rate:,.0f}/s {_describe(fast, args.rate)}, p50 added "
            f"{open_added:.1f} us (ratio {open_added / TARGET_ADDED_US:.2f})"
        )
    (t_single, t_open), (l_single, l_open) = shaped["a thread"], shaped["the client's event loop"]
    print(
        f"thread vs the client's loop (run --network hosts the proxy on a thread): single-stream "
        f"p50 {_p50_us(t_single) - _p50_us(l_single):+.1f} us; open loop late share "
        f"{t_open.late_fraction:.2%} vs {l_open.late_fraction:.2%}; load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(
        f"50 ms profile (proxy on a thread, blocking client): median added RTT "
        f"{added_50:.2f} ms, ratio to 50 ms {added_50 / 50:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
