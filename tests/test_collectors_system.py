"""System collectors against fake /proc and /sys trees: CPU, memory, thermal and throttling."""

from __future__ import annotations

import pytest

from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.cpu import CpuCollector, parse_proc_stat
from tippingpoint.harness.collectors.memory import MemoryCollector, parse_status_kib
from tippingpoint.harness.collectors.thermal import ThermalCollector
from tippingpoint.harness.collectors.throttle import is_throttled

from .fakes.sysfs import FakeClock, FakeTree, add_cpu, add_thermal_zone

STAT = "cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\nintr 1\n"
STATUS = "Name:\tpython\nVmPeak:\t 900000 kB\nVmHWM:\t  {hwm} kB\nVmRSS:\t  {rss} kB\n"


def _value(result, quantity):
    return next(m.value for m in result.measurements if m.quantity == quantity)


def test_parsers():
    assert parse_proc_stat(STAT.format(user=300, system=100, idle=600)) == (400, 1000)
    assert parse_status_kib(STATUS.format(hwm=10, rss=4), "VmRSS") == 4096
    assert parse_status_kib("Name: x\n", "VmRSS") is None
    with pytest.raises(ValueError):
        parse_proc_stat("intr 1\n")


def test_cpu_collector_process_and_system_utilisation(tmp_path):
    tree = FakeTree(tmp_path)
    clock = FakeClock()
    stat = {"user": 1000, "system": 500, "idle": 8500}
    tree.live("/proc/stat", lambda: STAT.format(**stat))
    cpu = {"ns": 0}
    c = CpuCollector(cpus=8, cpu_time_ns=lambda: cpu["ns"], root=tree.root, opener=tree.opener)
    c.open()
    c.begin_window(clock())
    clock.advance(2.0)
    cpu["ns"] += 3_000_000_000  # 3 CPU-seconds in 2 s: 1.5 cores, 1.5 / 8 of the machine
    stat.update(user=1600, system=600, idle=9300)  # busy +700 of +1500
    r = c.end_window(clock(), queries=1, samples=1)
    assert _value(r, "process_cpu_cores") == pytest.approx(1.5)
    assert _value(r, "process_cpu_utilisation") == pytest.approx(1.5 / 8)
    assert _value(r, "system_cpu_utilisation") == pytest.approx(700 / 1500)


def test_memory_collector_peak_in_the_window(tmp_path):
    tree = FakeTree(tmp_path)
    mem = {"rss": 100_000, "hwm": 300_000}
    tree.live("/proc/self/status", lambda: STATUS.format(**mem))
    c = MemoryCollector(root=tree.root, opener=tree.opener, background=False)
    c.open()
    c.poll()
    mem["rss"] = 250_000  # before the window: not counted
    c.poll()
    mem["rss"] = 120_000
    c.begin_window(1)
    mem["rss"] = 180_000
    c.poll()
    mem["rss"] = 150_000
    r = c.end_window(2, queries=1, samples=1)
    assert _value(r, "peak_rss_window") == 180_000 * 1024
    assert _value(r, "peak_rss_process") == 300_000 * 1024


def test_memory_collector_on_this_machine_in_a_thread():
    c = MemoryCollector(interval_s=0.01)
    c.open()
    try:
        c.begin_window(0)
        block = bytearray(32 << 20)  # touch 32 MiB inside the window
        block[::4096] = b"x" * len(block[::4096])
        r = c.end_window(1, queries=1, samples=1)
    finally:
        c.close()
    assert r.valid
    assert _value(r, "peak_rss_window") >= 32 << 20
    assert _value(r, "peak_rss_process") >= _value(r, "peak_rss_window")


def test_thermal_temperatures_clocks_and_x86_throttle_counters(tmp_path):
    tree = FakeTree(tmp_path)
    temp = {"pkg": 45_000}
    throttle = {"n": 7}
    freq = {"khz": 3_400_000}
    add_thermal_zone(tree, 0, "acpitz", 27_800)
    add_thermal_zone(tree, 1, "x86_pkg_temp", lambda: temp["pkg"])
    add_cpu(tree, 0, lambda: freq["khz"], lambda: throttle["n"])
    add_cpu(tree, 1, 3_300_000, 2)
    tree.write("/sys/devices/system/cpu/cpufreq/policy0/scaling_governor", "performance")
    c = ThermalCollector(root=tree.root, opener=tree.opener, background=False)
    c.open()
    c.begin_window(0)
    temp["pkg"] = 96_000
    freq["khz"] = 1_200_000
    c.poll()
    temp["pkg"] = 88_000
    freq["khz"] = 3_400_000
    r = c.end_window(1, queries=1, samples=1)
    assert _value(r, "temperature_before[x86_pkg_temp]") == 45.0
    assert _value(r, "temperature_max[x86_pkg_temp]") == 96.0
    assert _value(r, "temperature_after[x86_pkg_temp]") == 88.0
    assert _value(r, "cpu_freq_min") == 1200.0
    assert _value(r, "cpu_freq_max") == 3400.0
    assert _value(r, "thermal_throttle_events") == 0
    assert not is_throttled([r])
    c.begin_window(2)
    throttle["n"] = 9
    r2 = c.end_window(3, queries=1, samples=1)
    assert _value(r2, "thermal_throttle_events") == 2
    assert is_throttled([r2])


def test_thermal_raspberry_pi_get_throttled_bits(tmp_path):
    tree = FakeTree(tmp_path)
    add_thermal_zone(tree, 0, "cpu-thermal", 52_000)
    answer = {"text": "throttled=0x0\n"}
    c = ThermalCollector(
        gencmd=lambda cmd: answer["text"], root=tree.root, opener=tree.opener, background=False
    )
    c.open()
    c.begin_window(0)
    answer["text"] = "throttled=0xe0008\n"  # soft temperature limit active, and sticky bits
    c.poll()
    answer["text"] = "throttled=0xe0000\n"
    r = c.end_window(1, queries=1, samples=1)
    assert _value(r, "rpi_get_throttled") == 0xE0008
    assert is_throttled([r])
    # sticky bits that were already set before the run do not flag the next run
    c.begin_window(2)
    r2 = c.end_window(3, queries=1, samples=1)
    assert not is_throttled([r2])


def test_thermal_with_nothing_visible_says_why(tmp_path):
    with pytest.raises(CollectorUnavailable, match="no thermal zones, cpufreq or throttle"):
        ThermalCollector(root=tmp_path, background=False).open()


def test_thermal_arm_cpufreq_cooling_device_flags_throttling(tmp_path):
    # an ARM board: cpu-thermal zone, cpufreq, and the cpufreq cooling device the thermal
    # framework raises when hot (no x86 throttle counters, no firmware bits)
    tree = FakeTree(tmp_path)
    freq = {"khz": 2_400_000}
    state = {"n": 0}
    add_thermal_zone(tree, 0, "cpu-thermal", 60_000)
    add_cpu(tree, 0, lambda: freq["khz"])
    add_cpu(tree, 1, lambda: freq["khz"])
    tree.write("/sys/class/thermal/cooling_device0/type", "cpufreq-cpu0\n")
    tree.live("/sys/class/thermal/cooling_device0/cur_state", lambda: state["n"])
    tree.write("/sys/class/thermal/cooling_device0/max_state", 9)
    tree.write("/sys/class/thermal/cooling_device1/type", "pwm-fan\n")  # a fan: not a clock cap
    tree.write("/sys/class/thermal/cooling_device1/cur_state", 3)
    c = ThermalCollector(root=tree.root, opener=tree.opener, background=False)
    c.open()
    assert [d.label for d in c.cooling] == ["cpufreq-cpu0"]
    c.begin_window(0)
    c.poll()
    r = c.end_window(1, queries=1, samples=1)
    assert _value(r, "cooling_state_max[cpufreq-cpu0]") == 0
    assert _value(r, "cpu_freq_before") == 2400.0 and _value(r, "cpu_freq_after") == 2400.0
    assert not is_throttled([r])
    assert "cooling_device" in r.source

    c.begin_window(2)
    state["n"] = 2  # the governor capped the clocks mid-run ...
    freq["khz"] = 1_500_000
    c.poll()
    state["n"] = 0  # ... and released them before the end
    r2 = c.end_window(3, queries=1, samples=1)
    assert _value(r2, "cooling_state_max[cpufreq-cpu0]") == 2
    assert _value(r2, "cpu_freq_before") == 2400.0
    assert _value(r2, "cpu_freq_after") == 1500.0
    assert _value(r2, "cpu_freq_min") == 1500.0
    assert is_throttled([r2])
    flag = next(m for m in r2.measurements if m.quantity == "throttled")
    assert "cooling device cpufreq-cpu0 at state 2" in (flag.note or "")


class _FakeCuda:
    """torch.cuda of a process that has CUDA initialised (no GPU here)."""

    def __init__(self) -> None:
        self.peak = 5 << 30
        self.resets = 0

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def max_memory_allocated(self) -> int:
        return self.peak

    def reset_peak_memory_stats(self) -> None:
        self.resets += 1
        self.peak = 0


class _FakeTorch:
    def __init__(self) -> None:
        self.cuda = _FakeCuda()


def test_memory_collector_resets_torch_cuda_peak_at_each_window(tmp_path):
    tree = FakeTree(tmp_path)
    tree.write("/proc/self/status", STATUS.format(hwm=1000, rss=900))
    torch = _FakeTorch()
    c = MemoryCollector(root=tree.root, opener=tree.opener, background=False, torch=torch)
    c.open()
    c.begin_window(0)
    assert torch.cuda.resets == 1
    torch.cuda.peak = 123 << 20  # allocated during the window
    r = c.end_window(1, queries=1, samples=1)
    assert _value(r, "framework_gpu_peak_allocated") == 123 << 20  # not the 5 GiB from before
    note = next(m.note for m in r.measurements if m.quantity == "framework_gpu_peak_allocated")
    assert note is not None and "reset at the window's start" in note
    c.begin_window(2)
    assert torch.cuda.resets == 2
