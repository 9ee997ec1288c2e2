"""RAPL against a fake powercap tree: zones, wraps, permissions, failed reads, keeper thread."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tippingpoint.core.schema import MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.rapl import RaplCollector

from .fakes.sysfs import FakeClock, FakeTree, RaplCounter, add_rapl_zone


def _value(result, quantity):
    return next(m.value for m in result.measurements if m.quantity == quantity)


def _run(collector: RaplCollector, clock: FakeClock, seconds: float, step: float) -> object:
    collector.begin_window(clock())
    t = 0.0
    while t < seconds - 1e-9:
        clock.advance(step)
        t += step
        collector.poll()
    return collector.end_window(clock(), queries=100, samples=100)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tree(tmp_path: Path) -> FakeTree:
    return FakeTree(tmp_path)


def test_packages_are_the_headline_dram_beside_psys_and_mmio_skipped(tree, clock):
    pkg = RaplCounter(clock, watts=20.0, max_range_uj=262_143_328_850, start_uj=5_000_000)
    dram = RaplCounter(clock, watts=3.0, max_range_uj=65_712_999_613)
    add_rapl_zone(tree, "intel-rapl:0", "package-0", pkg)
    add_rapl_zone(tree, "intel-rapl:0:0", "core", RaplCounter(clock, 12.0, 262_143_328_850))
    add_rapl_zone(tree, "intel-rapl:0:1", "dram", dram)
    add_rapl_zone(tree, "intel-rapl:1", "psys", RaplCounter(clock, 35.0, 262_143_328_850))
    add_rapl_zone(tree, "intel-rapl-mmio:0", "package-0", RaplCounter(clock, 20.0, 10**12))
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    assert [ch.name for ch in c.channels] == ["package-0", "package-0/dram"]
    r = _run(c, clock, 10.0, 0.1)
    assert r.valid, r.invalid_reason
    assert r.method is MeasurementMethod.COUNTER
    assert r.scope == "cpu-package"
    # 20 W for 10 s; psys (35 W) and the MMIO mirror are not added on top
    assert _value(r, "energy") == pytest.approx(200.0, abs=1e-5)
    assert _value(r, "average_power") == pytest.approx(20.0, abs=1e-6)
    assert _value(r, "energy[package-0/dram]") == pytest.approx(30.0, abs=1e-5)
    assert r.window_energy_j == pytest.approx((40.0,) * 5, abs=1e-5)
    assert r.source == "/sys/class/powercap/intel-rapl:0"


def test_mmio_zone_is_used_when_the_msr_interface_is_absent(tree, clock):
    add_rapl_zone(tree, "intel-rapl-mmio:0", "package-0", RaplCounter(clock, 7.5, 10**12))
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    r = _run(c, clock, 4.0, 0.5)
    assert _value(r, "energy") == pytest.approx(30.0, abs=1e-5)
    assert r.source == "/sys/class/powercap/intel-rapl-mmio:0"


def test_two_packages_are_summed(tree, clock):
    add_rapl_zone(tree, "intel-rapl:0", "package-0", RaplCounter(clock, 40.0, 10**12))
    add_rapl_zone(tree, "intel-rapl:1", "package-1", RaplCounter(clock, 35.0, 10**12))
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    r = _run(c, clock, 2.0, 0.1)
    assert _value(r, "energy") == pytest.approx(150.0, abs=1e-5)
    assert _value(r, "energy[package-1]") == pytest.approx(70.0, abs=1e-5)


def test_wrapping_counter_is_unwrapped(tree, clock):
    # a 500 J range at 120 W, starting 50 J below the top: wraps after ~0.4 s, then every
    # ~4.2 s: three times in 10 s
    counter = RaplCounter(clock, watts=120.0, max_range_uj=500_000_000, start_uj=450_000_000)
    add_rapl_zone(tree, "intel-rapl:0", "package-0", counter, max_range_uj=500_000_000)
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    assert c.max_gap_s == pytest.approx(1.0)
    r = _run(c, clock, 10.0, 0.25)
    assert r.valid, r.invalid_reason
    assert c.wraps == 3
    assert _value(r, "energy") == pytest.approx(1200.0, abs=1e-5)


def test_reads_further_apart_than_a_wrap_invalidate_the_window(tree, clock):
    counter = RaplCounter(clock, watts=120.0, max_range_uj=500_000_000)
    add_rapl_zone(tree, "intel-rapl:0", "package-0", counter, max_range_uj=500_000_000)
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    r = _run(c, clock, 10.0, 5.0)  # a stalled keeper: 5 s between reads, wrap time ~4 s
    assert not r.valid
    assert "wrap may have been missed" in (r.invalid_reason or "")
    assert not any(m.quantity == "energy" for m in r.measurements)


def test_root_only_energy_uj_names_the_fix(tree, clock):
    add_rapl_zone(tree, "intel-rapl:0", "package-0", RaplCounter(clock, 10.0, 10**12))
    tree.deny("/sys/class/powercap/intel-rapl:0/energy_uj")
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    with pytest.raises(CollectorUnavailable) as err:
        c.open()
    msg = str(err.value)
    assert "/sys/class/powercap/intel-rapl:0/energy_uj is readable by root only" in msg
    assert "run as root" in msg and "chmod o+r" in msg and "udev" in msg


def test_missing_powercap_says_so(tree, clock):
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    with pytest.raises(CollectorUnavailable, match="/sys/class/powercap does not exist"):
        c.open()


def test_only_psys_is_not_a_package(tree, clock):
    add_rapl_zone(tree, "intel-rapl:1", "psys", RaplCounter(clock, 10.0, 10**12))
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    with pytest.raises(CollectorUnavailable, match="no package zones"):
        c.open()


def test_failed_read_in_the_window_is_invalid_never_zero_joules(tree, clock):
    zone = add_rapl_zone(tree, "intel-rapl:0", "package-0", RaplCounter(clock, 10.0, 10**12))
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    c.begin_window(clock())
    clock.advance(1.0)
    c.poll()
    tree.fail(f"{zone}/energy_uj")
    clock.advance(1.0)
    c.poll()
    tree.heal(f"{zone}/energy_uj")
    clock.advance(1.0)
    r = c.end_window(clock(), queries=10, samples=10)
    assert not r.valid
    assert "read failed" in (r.invalid_reason or "")
    assert "Input/output error" in (r.invalid_reason or "")
    assert not any(m.quantity == "energy" for m in r.measurements)
    # the next window starts clean
    r2 = _run(c, clock, 2.0, 0.1)
    assert r2.valid and _value(r2, "energy") == pytest.approx(20.0, abs=1e-5)


def test_counter_that_does_not_move_is_invalid(tree, clock):
    add_rapl_zone(tree, "intel-rapl:0", "package-0", 123_456)
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    r = _run(c, clock, 2.0, 0.1)
    assert not r.valid
    assert "did not advance" in (r.invalid_reason or "")


def test_short_window_has_no_sub_windows_only_the_total(tree, clock):
    add_rapl_zone(tree, "intel-rapl:0", "package-0", RaplCounter(clock, 10.0, 10**12))
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False, windows=1)
    c.open()
    r = _run(c, clock, 1.0, 0.1)
    assert r.valid and r.window_energy_j == ()


def test_keeper_thread_reads_in_the_background(tree):
    clock = time.perf_counter_ns
    add_rapl_zone(tree, "intel-rapl:0", "package-0", RaplCounter(clock, 15.0, 10**12))
    c = RaplCollector(root=tree.root, opener=tree.opener, interval_s=0.01)
    c.open()
    try:
        c.begin_window(clock())
        before = tree.reads
        time.sleep(0.2)
        assert tree.reads > before + 3  # the keeper read without being asked
        r = c.end_window(clock(), queries=1, samples=1)
    finally:
        c.close()
    assert r.valid, r.invalid_reason
    assert _value(r, "average_power") == pytest.approx(15.0, rel=0.05)


def test_sub_windows_need_readings_of_their_own(tree, clock):
    add_rapl_zone(tree, "intel-rapl:0", "package-0", RaplCounter(clock, 10.0, 10**12))
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    r = _run(c, clock, 2.0, 0.5)  # 0.4 s sub-windows, a read every 0.5 s
    assert r.valid and r.window_energy_j == ()
    r = _run(c, clock, 2.0, 0.1)  # 4 reads per sub-window
    assert r.window_energy_j == pytest.approx((4.0,) * 5, abs=1e-6)


def test_an_unexpected_error_in_the_sampling_thread_invalidates_the_window(tree):
    add_rapl_zone(tree, "intel-rapl:0", "package-0", RaplCounter(time.perf_counter_ns, 5, 10**12))
    c = RaplCollector(root=tree.root, opener=tree.opener, interval_s=0.005)
    c.open()
    try:
        c.begin_window(time.perf_counter_ns())
        real_read = c._read

        def broken() -> tuple[float, ...]:
            raise RuntimeError("driver bug")

        c._read = broken  # type: ignore[method-assign]
        deadline = time.monotonic() + 5
        while c._poller is not None and c._poller.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        c._read = real_read  # type: ignore[method-assign]
        r = c.end_window(time.perf_counter_ns(), queries=1, samples=1)
    finally:
        c.close()
    assert not r.valid
    assert "sampling thread failed: RuntimeError('driver bug')" in (r.invalid_reason or "")


def test_permission_lost_after_open_invalidates_the_window_with_the_fix(tree, clock):
    add_rapl_zone(tree, "intel-rapl:0", "package-0", RaplCounter(clock, 10.0, 10**12))
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    c.begin_window(clock())
    clock.advance(1.0)
    c.poll()
    # e.g. a udev rule reloaded, or the kernel updated: energy_uj became root-only mid-run
    tree.deny("/sys/class/powercap/intel-rapl:0/energy_uj")
    clock.advance(1.0)
    c.poll()
    r = c.end_window(clock(), queries=10, samples=10)
    assert not r.valid
    reason = r.invalid_reason or ""
    assert reason.startswith("rapl: read failed: /sys/class/powercap/intel-rapl:0/energy_uj is ")
    assert "readable by root only" in reason and "sudo chmod o+r" in reason
    assert not any(m.quantity == "energy" for m in r.measurements)  # never 0 J
