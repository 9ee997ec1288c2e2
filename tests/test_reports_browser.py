"""The HTML report as a person sees it: headless Chromium, no console errors, charts drawn.

Chromium comes from Debian's ``chromium`` package; the fixture installs it with apt-get when it
is missing (and skips, saying why, where it cannot). Every page load runs with a fresh profile,
no network (all host names resolve to nothing) and console logging to stderr, where each
console message appears as a ``:CONSOLE`` line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tippingpoint.reports.render_report import write_report_file

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the chromium binary, installed from Debian's package when missing."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("needs Debian's chromium package: apt-get install -y chromium (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if p.returncode != 0:
            pytest.skip(f"could not install chromium ({' '.join(cmd)}): {p.stderr.strip()[-200:]}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed chromium but no 'chromium' binary is on PATH")
    return found


def browse(chromium: str, tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run one headless page load with a fresh profile; stdout holds any --dump-dom output."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
    )


def console_lines(stderr: str) -> list[str]:
    """Console messages (errors, failed loads, uncaught exceptions) the page produced."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


class ChartCounter(HTMLParser):
    """Counts drawn elements inside each <svg class="chart"> of a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict[str, int | str]] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg" and "chart" in (a.get("class") or ""):
            self.charts.append({"id": a.get("data-figure") or "", "shapes": 0})
            self._depth = 1
        elif self._depth:
            if tag in ("path", "rect", "circle", "line"):
                self.charts[-1]["shapes"] = int(self.charts[-1]["shapes"]) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self._depth:
            self._depth = 0


def test_the_console_check_catches_errors(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><p>x</p><img src="missing.png"><script>nope();</script>')
    p = browse(chromium, tmp_path, page.as_uri(), "--dump-dom")
    lines = console_lines(p.stderr)
    assert any("nope is not defined" in line for line in lines), p.stderr[-2000:]


def _check_loads_and_draws(chromium: str, report: Path, tmp_path: Path, *extra: str) -> list[str]:
    p = browse(chromium, tmp_path, report.as_uri(), *extra, "--dump-dom")
    assert p.returncode == 0, p.stderr[-2000:]
    assert console_lines(p.stderr) == []
    counter = ChartCounter()
    counter.feed(p.stdout)
    assert len(counter.charts) == len(re.findall(r'<svg [^>]*class="chart"', report.read_text()))
    assert len(counter.charts) >= 4
    for chart in counter.charts:
        assert int(chart["shapes"]) >= 5, f"chart {chart['id']} is empty"
    return [str(c["id"]) for c in counter.charts]


EVERY_KIND = ("cdf-", "pct-", "conc-", "load-", "energy", "accuracy")
"""Figure id prefixes of every run chart: latency CDF and percentiles, throughput vs
concurrency and latency vs offered load (HTTP), joules per inference, accuracy deltas."""


def _kinds(ids: list[str]) -> set[str]:
    return {k for k in EVERY_KIND if any(i.startswith(k) for i in ids)}


def test_report_loads_without_console_errors_and_draws_every_chart(
    chromium: str,
    full_results: Path,
    tmp_path: Path,
) -> None:
    report = write_report_file([full_results], tmp_path / "report.html")
    ids = _check_loads_and_draws(chromium, report, tmp_path)
    assert {"cdf-mlp-tiny", "pct-mlp-tiny", "cdf-conv-small", "pct-conv-small"} <= set(ids)
    assert {"cdf-digits-cnn", "energy", "accuracy"} <= set(ids)
    assert _kinds(ids) == set(EVERY_KIND), ids


def test_report_with_cost_draws_tco_tornado_and_monte_carlo(
    chromium: str,
    real_results: Path,
    cost_json: Path,
    tmp_path: Path,
) -> None:
    report = write_report_file([real_results], tmp_path / "cost.html", "html", cost_json)
    ids = set(_check_loads_and_draws(chromium, report, tmp_path))
    assert {"tco-test-instance", "tornado-test-instance", "mc-test-instance"} <= ids
    shot = tmp_path / "cost-desktop.png"
    p = browse(
        chromium, tmp_path, report.as_uri(), "--window-size=1280,2400", f"--screenshot={shot}"
    )
    assert p.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("name", "size"), [("desktop", "1280,2400"), ("phone", "390,844")])
def test_report_screenshots_at_desktop_and_phone_width(
    chromium: str,
    full_results: Path,
    tmp_path: Path,
    name: str,
    size: str,
) -> None:
    report = write_report_file([full_results], tmp_path / "report.html")
    # at this width too, every chart is in the page and drawn
    ids = _check_loads_and_draws(chromium, report, tmp_path, f"--window-size={size}")
    assert _kinds(ids) == set(EVERY_KIND), ids
    shot = tmp_path / f"report-{name}.png"
    p = browse(chromium, tmp_path, report.as_uri(), f"--window-size={size}", f"--screenshot={shot}")
    assert p.returncode == 0, p.stderr[-2000:]
    assert console_lines(p.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = pytest.importorskip("PIL.Image", reason="Pillow comes with matplotlib (report extra)")
    with image.open(shot) as im:
        width, height = (int(v) for v in size.split(","))
        assert im.size == (width, height)
        colours = im.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50, "the page looks blank"
