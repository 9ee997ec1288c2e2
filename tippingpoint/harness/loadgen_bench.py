"""Load-generator benchmark: tippingpoint's HTTP load generator against a static nginx
endpoint on loopback, next to ``wrk`` on the same endpoint in the same command, once with each
HTTP client of the backend (``client=aiohttp`` and ``client=raw``).

Run with ``make bench-loadgen`` (needs Debian's ``nginx`` and ``wrk``:
``apt-get install -y nginx wrk``). It prints the closed-loop and open-loop rates achieved, the
send-lag percentiles, the share of requests sent over 1 ms late, and each rate's ratio to
wrk's, one row per client. Targets (issue 6): >= 8,000 requests/s open loop; send lag
p99 < 1 ms at 1,000/s.
This is a benchmark: it prints, it asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from tippingpoint.harness.loadgen import LATE_NS, LoadRun

NGINX_CONF = """
worker_processes 1;
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location / {{ return 200 '{{"ok":true}}'; }}
    }}
}}
"""
OPEN_RATE_TARGET = 8000.0
LAG_RATE = 1000.0
CONCURRENCY = 32
CLIENTS = ("aiohttp", "raw")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"error: nginx did not start on 127.0.0.1:{port}")


def start_nginx(prefix: Path) -> tuple[subprocess.Popen[bytes], int]:
    """nginx serving a static 200 on a free loopback port, in the foreground."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"  # root's PATH may lack /usr/sbin
    port = _free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port))
    proc = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(prefix)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_port(port)
    return proc, port


def run_wrk(url: str, seconds: float) -> float:
    """wrk's requests/s with one thread and 32 connections."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{max(int(seconds), 1)}s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if m is None:
        raise SystemExit(f"error: cannot read wrk's output: {out[:200]}")
    return float(m.group(1))


def measure(url: str, client: str, seconds: float, fast_rate: float) -> tuple[LoadRun, ...]:
    """Closed loop, open loop at ``fast_rate`` and at 1,000/s against ``url`` with ``client``."""
    from tippingpoint.backends.http import HttpBackend
    from tippingpoint.core.kinds import ScenarioKind
    from tippingpoint.core.schema import ArrivalProcess, StopRule
    from tippingpoint.core.types import OptionValue
    from tippingpoint.harness.loadgen import closed_loop, open_loop

    opts: dict[str, OptionValue] = {
        "endpoint": url,
        "protocol": "template",
        "path": "/",
        "method": "GET",
        "check_ready": False,
        "max_connections": 1024,
        "client": client,
    }
    session = HttpBackend().load(Path("static"), opts)
    try:
        send = session.request_fn(ScenarioKind.SINGLE_STREAM, [])  # the client asked for
        rule = StopRule(min_queries=1, min_duration_s=seconds, max_duration_s=60)
        limit = seconds + 60
        warm = StopRule(min_queries=1000, min_duration_s=0.5, max_duration_s=10)
        session.run(closed_loop(send, CONCURRENCY, warm), limit)
        closed = session.run(closed_loop(send, CONCURRENCY, rule), limit)
        fast = session.run(open_loop(send, fast_rate, rule, arrival=ArrivalProcess.POISSON), limit)
        slow = session.run(open_loop(send, LAG_RATE, rule, arrival=ArrivalProcess.POISSON), limit)
    finally:
        session.close()
    return closed, fast, slow


def main(argv: list[str] | None = None) -> int:
    """Start nginx, run wrk and the load generator against it, print rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--rate", type=float, default=OPEN_RATE_TARGET, help="open-loop rate")
    args = parser.parse_args(argv)
    missing = [t for t in ("nginx", "wrk") if shutil.which(t) is None]
    if "nginx" in missing and Path("/usr/sbin/nginx").exists():
        missing.remove("nginx")  # root's PATH may lack /usr/sbin
    if missing:
        print(
            f"error: {', '.join(missing)} not installed (apt-get update && apt-get install -y "
            "nginx wrk)",
            file=sys.stderr,
        )
        return 1

    with tempfile.TemporaryDirectory(prefix="tp-nginx-") as tmp:
        proc, port = start_nginx(Path(tmp))
        url = f"http://127.0.0.1:{port}"
        try:
            wrk_rate = run_wrk(url + "/", args.seconds)
            loads = {c: measure(url, c, args.seconds, args.rate) for c in CLIENTS}
        finally:
            proc.terminate()
            proc.wait(10)

    def rate(load: LoadRun) -> float:
        ok = load.ok
        if not ok.any():  # every request failed: the error counts below say how
            return 0.0
        end = load.end_ns[ok]
        return float(ok.sum() / ((end.max() - load.window_start_ns) / 1e9))

    def lag(load: LoadRun) -> str:
        values = np.sort(load.send_lag_ns) / 1e6
        p50, p99, mx = (float(np.percentile(values, q)) for q in (50, 99, 100))
        late = float(np.mean(load.send_lag_ns > LATE_NS))
        kinds = Counter(e for e in load.errors if e is not None)
        errors = sum(kinds.values())
        which = f" ({', '.join(f'{k} {n}' for k, n in kinds.most_common())})" if kinds else ""
        return (
            f"send lag p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {mx:.3f} ms; "
            f"{late:.2%} sent >1 ms late; {errors} errors{which}"
        )

    print(f"endpoint: nginx static 200 on 127.0.0.1 ({args.seconds:g} s per run)")
    print(f"{'wrk -t1 -c' + str(CONCURRENCY) + ':':<44}{wrk_rate:>10,.0f} req/s")
    for client, (closed, fast, slow) in loads.items():
        closed_rate, fast_rate, slow_rate = rate(closed), rate(fast), rate(slow)
        print(
            f"{client + f' closed loop, {CONCURRENCY} in flight:':<44}{closed_rate:>10,.0f} req/s"
            f"   ratio to wrk {closed_rate / wrk_rate:.3f}"
        )
        print(
            f"{client + f' open loop at {args.rate:,.0f}/s:':<44}{fast_rate:>10,.0f} req/s"
            f"   ratio to wrk {fast_rate / wrk_rate:.3f}   ratio to target "
            f"{fast_rate / OPEN_RATE_TARGET:.3f}   {lag(fast)}"
        )
        print(
            f"{client + f' open loop at {LAG_RATE:,.0f}/s:':<44}{slow_rate:>10,.0f} req/s"
            f"   {lag(slow)} (target p99 < 1 ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
