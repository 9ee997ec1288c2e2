"""``tippingpoint run --network``: the shaper sits between the client and the endpoint and the
report records the link (tests on loopback against ``tippingpoint serve``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import tp
from tests.http_helpers import serve_process
from tippingpoint.core.io import read_report
from tippingpoint.core.links import ShaperKind
from tippingpoint.core.schema import Report

RUN = (
    "run", "-m", "mlp-tiny", "-s", "single-stream", "--min-queries", "20",
    "--min-duration", "0.5", "--warmup-duration", "0", "--stop", "fixed", "--idle-s", "0",
)  # fmt: skip


def _one_report(out: Path) -> Report:
    (path,) = sorted(out.glob("*.json"))
    return read_report(path)


def test_run_under_a_profile_records_the_link_and_adds_its_rtt(tmp_path: Path) -> None:
    with serve_process("--model", "mlp-tiny") as (url, _):
        plain = tp(*RUN, "--endpoint", url, "--out", str(tmp_path / "plain"))
        shaped = tp(*RUN, "--endpoint", url, "--network", "wpt-dsl", "--out", str(tmp_path / "dsl"))
    assert plain.returncode == 0, plain.stderr
    assert shaped.returncode == 0, shaped.stderr
    assert "network 'wpt-dsl': user-space proxy on loopback" in shaped.stdout + shaped.stderr
    base, under = _one_report(tmp_path / "plain"), _one_report(tmp_path / "dsl")
    assert base.http is not None and base.http.link is None
    assert "link" not in base.http.model_dump(mode="json")
    assert under.http is not None and under.http.link is not None
    link = under.http.link
    assert link.profile.name == "wpt-dsl" and link.shaper is ShaperKind.PROXY
    assert under.http.endpoint == url  # the endpoint as given, not the proxy's port
    assert link.connections >= 1 and link.handshake_rtt is not None
    assert link.handshake_rtt.p50_ms >= 40.0  # the profile's 50 ms, loosely
    assert link.up.bytes > 0 and link.down.bytes > 0
    assert any("in a thread of the measuring process" in n for n in link.notes)
    # each single-stream query crosses the link once each way: p50 rises by about the RTT
    assert under.results is not None and base.results is not None
    assert under.results.latency.p50 - base.results.latency.p50 >= 0.8 * link.profile.rtt_ms
    # Server-Timing splits the client's latency: the link lands in the network time
    assert base.http.network_time is not None and under.http.network_time is not None
    assert under.http.server_time is not None
    network_rise = under.http.network_time.p50 - base.http.network_time.p50
    assert network_rise >= 0.8 * link.profile.rtt_ms
    assert under.http.server_time.p50 < network_rise


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--endpoint", "http://127.0.0.1:9", "--network", "no-such-link"), "no network profile"),
        (("--network", "lte"), "--network shapes the link to a remote endpoint"),
        (("--endpoint", "ws://127.0.0.1:9", "--network", "lte"), "http(s):// and grpc(s)://"),
        (
            ("--endpoint", "grpcs://127.0.0.1:9", "--network", "lte", "--opt", "connect_to=x:1"),
            "connect_to",
        ),
        (
            ("--endpoint", "https://127.0.0.1:9", "--network", "lte", "--opt", "connect_to=x:1"),
            "connect_to",
        ),
        (("--endpoint", "https://127.0.0.1:9", "--opt", "connect_to=nonsense"), "HOST:PORT"),
        (("--endpoint", "http://127.0.0.1:9", "--network", "lte", "--shaper", "x"), "shaper"),
    ],
)
def test_bad_network_input_is_one_line_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    proc = tp(*RUN, "--out", str(tmp_path), *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.json"))


def test_suite_file_network_key(tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text('[run]\nmodels = ["mlp-tiny"]\nnetwork = "no-such-link"\n')
    proc = tp(
        *RUN, "--endpoint", "http://127.0.0.1:9", "--suite", str(suite), "--out", str(tmp_path)
    )
    assert proc.returncode == 2, proc.stderr
    assert "no network profile named 'no-such-link'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def localhost_cert(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the name ``localhost`` only (no IP address): a client that
    checked it against the address it connects to (the shaper's 127.0.0.1) would refuse it."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def _assert_tls_through_the_shaper(report: Report, url: str, port: str) -> None:
    """A TLS endpoint measured through 'wpt-dsl': recorded as given, verified, error-free, and
    its client connected to the shaper's entry (connect_to), not to the server's port."""
    assert report.http is not None and report.http.link is not None
    assert report.http.endpoint == url and report.http.tls_verify is True
    assert report.http.error_rate == 0
    link = report.http.link
    assert link.profile.name == "wpt-dsl" and link.connections >= 1
    # the TLS handshake and every request crossed the shaper
    assert link.handshake_rtt is not None and link.handshake_rtt.p50_ms >= 40.0
    assert link.up.bytes > 0 and link.down.bytes > 0
    assert report.results is not None
    assert report.results.latency.p50 >= 0.8 * link.profile.rtt_ms
    assert report.backend is not None
    entry = report.backend.options["connect_to"]
    assert (
        isinstance(entry, str) and entry.startswith("127.0.0.1:") and entry != f"127.0.0.1:{port}"
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_https_endpoint_under_a_profile_keeps_its_tls_name(tmp_path: Path) -> None:
    cert, key = localhost_cert(tmp_path)
    serve = subprocess.Popen(
        [sys.executable, "-m", "tippingpoint", "serve", "--model", "mlp-tiny", "--port", "0",
         "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    # the certificate is trusted (verification stays on), for the name localhost only
    env = {**os.environ, "SSL_CERT_FILE": str(cert)}
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        assert " on https://" in line, line
        port = line.split(" on https://")[1].split()[0].rsplit(":", 1)[1]
        url = f"https://localhost:{port}"
        out = tmp_path / "tls"
        shaped = tp(*RUN, "--endpoint", url, "--network", "wpt-dsl", "--out", str(out), env=env)
        for client in ("raw", "aiohttp"):  # both clients honour connect_to
            proc = tp(
                *RUN, "--endpoint", url, "--network", "wpt-dsl", "--opt", f"client={client}",
                "--min-queries", "5", "--out", str(tmp_path / client), env=env,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
    finally:
        serve.terminate()
        serve.wait(10)
        if serve.stdout is not None:
            serve.stdout.close()
    assert shaped.returncode == 0, shaped.stderr
    _assert_tls_through_the_shaper(_one_report(out), url, port)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_grpcs_endpoint_under_a_profile_keeps_its_tls_name(tmp_path: Path) -> None:
    """KServe v2 over gRPC with TLS through the shaper: the channel connects to the shaper's
    entry and checks the certificate against the URL's name (localhost), which the entry's
    127.0.0.1 would fail."""
    pytest.importorskip("grpc", reason="grpcio is the grpc extra")
    cert, key = localhost_cert(tmp_path)
    serve = subprocess.Popen(
        [sys.executable, "-m", "tippingpoint", "serve", "--model", "mlp-tiny", "--port", "0",
         "--grpc-port", "0", "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        assert " and grpcs://" in line, line
        port = line.split(" and grpcs://")[1].split()[0].rsplit(":", 1)[1]
        url = f"grpcs://localhost:{port}"
        out = tmp_path / "grpcs"
        shaped = tp(
            *RUN, "--endpoint", url, "--network", "wpt-dsl", "--opt", f"tls_ca={cert}",
            "--out", str(out),
        )  # fmt: skip
    finally:
        serve.terminate()
        serve.wait(10)
        if serve.stdout is not None:
            serve.stdout.close()
    assert shaped.returncode == 0, shaped.stderr
    _assert_tls_through_the_shaper(_one_report(out), url, port)


FLAKY = """
[network.flaky-test]
description = "loopback with an outage every second: a reset window, then a black hole"
rtt_ms = 2
uplink_mbps = 100
downlink_mbps = 100
outages = [
    { start_s = 0.3, duration_s = 0.2, mode = "reset", every_s = 1.0 },
    { start_s = 0.7, duration_s = 0.2, mode = "blackhole", every_s = 1.0 },
]
"""


def test_outages_in_an_open_loop_run_are_counted_by_kind_in_the_report(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "tippingpoint" / "profiles").mkdir(parents=True)
    (xdg / "tippingpoint" / "profiles" / "net.toml").write_text(FLAKY)
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg)}
    with serve_process("--model", "mlp-tiny") as (url, _):
        proc = tp(
            "run", "-m", "mlp-tiny", "-s", "server", "--rate", "40", "--min-queries", "80",
            "--min-duration", "3", "--warmup-duration", "0", "--stop", "fixed", "--idle-s", "0",
            "--endpoint", url, "--network", "flaky-test", "--opt", "timeout_s=0.5",
            "--out", str(tmp_path / "out"), env=env, timeout=180,
        )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    report = _one_report(tmp_path / "out")
    assert report.http is not None and report.http.link is not None
    link = report.http.link
    assert link.profile.user_defined and link.profile.name == "flaky-test"
    # the reset windows: connections reset or refused, counted as connection errors
    resets = [o for o in link.outages if o.mode.value == "reset"]
    blackholes = [o for o in link.outages if o.mode.value == "blackhole"]
    print(f"errors {report.http.errors_by_kind}, outages {link.outages}")
    assert len(resets) >= 3 and len(blackholes) >= 3
    assert sum(o.connections_reset + o.connections_refused for o in resets) >= 1
    assert report.http.errors_by_kind.get("connection", 0) >= 1, report.http.errors_by_kind
    assert report.http.requests > report.http.successes
    # a request caught in a black hole waits out the window or times out: the link held its
    # segments, the report counts timeouts or its tail shows the wait
    assert report.results is not None
    held = sum(o.segments_held for o in blackholes)
    timeouts = report.http.errors_by_kind.get("timeout", 0)
    assert held + timeouts >= 1
    assert timeouts >= 1 or report.results.latency.max >= 100.0
