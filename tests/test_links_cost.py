"""The calculator prefers measurement: a cloud run measured under the cost's network profile
(``run --network NAME``) gives the cloud p99 as measured; another link's figure is projected
onto the network and labelled estimated, naming the report and the link it came from. Real
reports from real runs: the device on ONNX Runtime, the endpoint ``tippingpoint serve`` on
loopback, once through the user-space shaper under ``wpt-cable`` and once on the bare path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import tp
from tests.http_helpers import serve_process
from tests.reports_fixtures import CLOUD_PROFILE, run_cli
from tippingpoint.core.io import read_report, report_files
from tippingpoint.core.schema import Report

WORKLOAD = """
[workload.links-test]
description = "payload as measured (no request_bytes): the endpoint's own"
inferences_per_day = 100000
slo_p99_ms = 1000
horizon_years = 1
delay_cost_per_late_request = 0.001
"""
BIG_PAYLOAD = WORKLOAD.replace("links-test", "links-big").replace(
    "horizon_years = 1", "horizon_years = 1\nrequest_bytes = 50000"
)
CHANGED_CABLE = """
[network.wpt-cable]
description = "WebPageTest Cable, edited after the run"
rtt_ms = 80
uplink_mbps = 1
downlink_mbps = 5
"""


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report, Report]:
    """A results folder: mlp-tiny on the device, then against the endpoint under wpt-cable,
    then on the bare path (the latest, so the projection's source); the two HTTP reports."""
    out = tmp_path_factory.mktemp("link-results")
    run_cli(out, "-m", "mlp-tiny", "-b", "onnxruntime")
    with serve_process("--model", "mlp-tiny") as (url, _):
        run_cli(out / "cable", "-m", "mlp-tiny", "--endpoint", url, "--network", "wpt-cable")
        run_cli(out / "bare", "-m", "mlp-tiny", "--endpoint", url)
    (cable,) = [read_report(p) for p in report_files([out / "cable"])]
    (bare,) = [read_report(p) for p in report_files([out / "bare"])]
    assert cable.http is not None and cable.http.link is not None
    assert bare.http is not None and bare.http.link is None
    return out, cable, bare


def cost(out: Path, tmp: Path, network: str, *extra: str) -> tuple[dict[str, Any], str]:
    """``tippingpoint cost`` over the folder under ``network``: the JSON result and stdout."""
    profiles = tmp / "profiles.toml"
    profiles.write_text(CLOUD_PROFILE + WORKLOAD + BIG_PAYLOAD)
    result = tmp / f"cost-{network}.json"
    proc = tp(
        "cost", "--reports", str(out), "--reports", str(out / "cable"),
        "--reports", str(out / "bare"), "--model", "mlp-tiny", "--device", "rpi5",
        "--cloud", "test-instance", "--profiles", str(profiles), "--workload", "links-test",
        "--network", network, "--proxy-host", "--accept-flagged", "--draws", "200",
        "--out", str(result), *extra,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(result.read_text()), proc.stdout


def cloud_latency(result: dict[str, Any]) -> dict[str, Any]:
    (analysis,) = result["analyses"]
    (cloud,) = [p for p in analysis["placements"] if p["placement"] == "cloud"]
    latency: dict[str, Any] = cloud["latency"]
    return latency


def late_share(result: dict[str, Any]) -> dict[str, Any]:
    (analysis,) = result["analyses"]
    (row,) = [r for r in analysis["inputs"] if r["param"] == "cloud_late_share"]
    return dict(row)


def test_a_run_under_the_costs_network_gives_the_measured_p99(
    measured: tuple[Path, Report, Report], tmp_path: Path
) -> None:
    out, cable, _ = measured
    result, stdout = cost(out, tmp_path, "wpt-cable")
    lat = cloud_latency(result)
    assert lat["basis"] == "measured"
    assert cable.results is not None
    assert lat["p99_ms"] == pytest.approx(cable.results.latency.p99)
    (part,) = lat["parts"]  # the link is in the measurement: no RTT or transfer added
    assert part["basis"] == "measured" and cable.run_id[:8] in part["origin"]
    assert "measured under network 'wpt-cable'" in lat["method"]
    assert "under network 'wpt-cable' (proxy)" in lat["method"]
    # the late share comes from the same run's raw client-side latencies, nothing added
    row = late_share(result)
    assert row["basis"] == "measured" and cable.run_id[:8] in row["origin"]
    assert "(measured)" in stdout
    assert "p99 of cloud: test-instance: measured under network 'wpt-cable'" in stdout


def test_another_network_is_projected_and_labelled_estimated(
    measured: tuple[Path, Report, Report], tmp_path: Path
) -> None:
    out, _, bare = measured
    result, stdout = cost(out, tmp_path, "lte")
    lat = cloud_latency(result)
    assert lat["basis"] == "estimated"
    names = [p["name"] for p in lat["parts"]]
    assert names[:2] == ["server p99", "network RTT"]
    assert lat["p99_ms"] == pytest.approx(sum(p["ms"] for p in lat["parts"]))
    assert bare.http is not None and bare.http.server_time is not None
    assert lat["parts"][0]["ms"] == pytest.approx(bare.http.server_time.p99)
    # it says from which report and which link it was projected
    assert "projected onto network 'lte'" in lat["method"]
    assert bare.run_id[:8] in lat["method"] and "bare path (no shaped link)" in lat["method"]
    assert late_share(result)["basis"] == "estimated"
    assert "(estimated)" in stdout and "projected onto network 'lte'" in stdout


def test_a_profile_changed_since_the_run_is_projected_with_a_warning(
    measured: tuple[Path, Report, Report], tmp_path: Path
) -> None:
    out, _, _ = measured
    changed = tmp_path / "cable.toml"
    changed.write_text(CHANGED_CABLE)
    result, _ = cost(out, tmp_path, "wpt-cable", "--profiles", str(changed))
    lat = cloud_latency(result)
    assert lat["basis"] == "estimated" and "projected onto network 'wpt-cable'" in lat["method"]
    (warning,) = [w for w in result["warnings"] if "has changed since" in w]
    assert "delay_up_ms 14.0 -> 40.0" in warning and "re-measure" in warning


def test_a_larger_costed_payload_adds_its_transfer_and_is_estimated(
    measured: tuple[Path, Report, Report], tmp_path: Path
) -> None:
    out, cable, _ = measured
    result, _ = cost(out, tmp_path, "wpt-cable", "--workload", "links-big")
    lat = cloud_latency(result)
    assert lat["basis"] == "estimated"
    measured_part, extra = lat["parts"]
    assert measured_part["basis"] == "measured" and extra["name"] == "payload difference"
    assert cable.http is not None
    sent = cable.http.bytes_sent_per_request
    # 50 kB against what was sent, at wpt-cable's 1 Mbit/s up (the response is as measured)
    assert extra["ms"] == pytest.approx((50000 - sent) * 8 / 1e6 * 1e3, rel=0.01)
    assert "measured under network 'wpt-cable'" in lat["method"]
    assert lat["method"].startswith("estimated:")


def test_the_html_report_labels_the_cloud_p99(
    measured: tuple[Path, Report, Report], tmp_path: Path
) -> None:
    out, _, _ = measured
    cost(out, tmp_path, "lte")
    html = tmp_path / "report.html"
    folders = (str(out), str(out / "cable"), str(out / "bare"))
    proc = tp("report", *folders, "--cost", str(tmp_path / "cost-lte.json"), "--out", str(html))
    assert proc.returncode == 0, proc.stderr
    page = html.read_text()
    assert "ms (estimated)" in page and "ms (measured)" in page  # cloud projected, edge measured
    assert (
        "p99 of cloud: test-instance: estimated: projected onto network &#x27;lte&#x27;" in (page)
        or "p99 of cloud: test-instance: estimated: projected onto network 'lte'" in page
    )
