"""``tippingpoint run --network``: the shaper sits between the client and the endpoint and the
report records the link (tests on loopback against ``tippingpoint serve``)."""

from __future__ import annotations

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
    # each single-stream query crosses the link once each way: p50 rises by about the RTT
    assert under.results is not None and base.results is not None
    assert under.results.latency.p50 - base.results.latency.p50 >= 0.8 * link.profile.rtt_ms


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--endpoint", "http://127.0.0.1:9", "--network", "no-such-link"), "no network profile"),
        (("--network", "lte"), "--network shapes the link to a remote endpoint"),
        (("--endpoint", "https://127.0.0.1:9", "--network", "lte"), "plain http:// and grpc://"),
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
