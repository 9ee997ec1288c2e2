"""The NVML collector through its adapter, with a fake GPU; the real binding where a GPU is."""

from __future__ import annotations

import os
import shutil

import pytest

from tippingpoint.core.schema import MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.nvml import (
    HW_THERMAL,
    SW_POWER_CAP,
    NvmlCollector,
    PynvmlApi,
)

from .fakes.nvml import FakeGpu, FakeNvml
from .fakes.sysfs import FakeClock

HAS_NVIDIA = shutil.which("nvidia-smi") is not None


def _value(result, quantity):
    return next(m.value for m in result.measurements if m.quantity == quantity)


def _run(c: NvmlCollector, clock: FakeClock, seconds: float, step: float = 0.05):
    c.begin_window(clock())
    for _ in range(round(seconds / step)):
        clock.advance(step)
        c.poll()
    return c.end_window(clock(), queries=1000, samples=1000)


def test_counter_is_the_headline_and_sampled_power_sits_beside_it():
    clock = FakeClock()
    gpu = FakeGpu(clock, 250.0)
    api = FakeNvml([gpu])
    c = NvmlCollector(api=api, clock=clock, sleep=clock.advance, background=False)
    c.open()
    r = _run(c, clock, 10.0)
    assert r.valid, r.invalid_reason
    assert r.method is MeasurementMethod.COUNTER
    assert r.scope == "gpu-board"
    assert r.source == "nvml:0 (NVIDIA Fake H100)"
    # 2500 J; the counter publishes every 50 ms, so each edge may be off by 12.5 J
    assert _value(r, "energy") == pytest.approx(2500.0, abs=25.0)
    assert _value(r, "energy[power_sampled]") == pytest.approx(2500.0, abs=1e-6)
    assert len(r.window_energy_j) == 5
    c.close()
    assert api.initialised == 0


def test_without_a_counter_power_is_integrated_by_trapezoid():
    clock = FakeClock()
    # a ramp 100 W -> 200 W over 10 s: the trapezoid gives exactly 1500 J
    gpu = FakeGpu(clock, lambda t: 100.0 + 10.0 * t, counter=False)
    c = NvmlCollector(api=FakeNvml([gpu]), clock=clock, sleep=clock.advance, background=False)
    c.open()
    gpu.t0 = clock()
    r = _run(c, clock, 10.0, step=0.1)
    assert r.method is MeasurementMethod.SAMPLED
    assert _value(r, "energy") == pytest.approx(1500.0, rel=1e-3)
    assert _value(r, "power_samples") == 101
    assert r.sample_rate_hz == pytest.approx(10.0)


def test_not_supported_everywhere_means_try_the_next_source():
    clock = FakeClock()
    gpu = FakeGpu(clock, 5.0, counter=False, power=False, name="Orin (nvgpu)")
    api = FakeNvml([gpu])
    c = NvmlCollector(api=api, clock=clock, sleep=clock.advance, background=False)
    with pytest.raises(CollectorUnavailable, match=r"NOT_SUPPORTED.*next source"):
        c.open()
    assert api.initialised == 0


def test_no_driver_and_missing_index_are_reasons():
    clock = FakeClock()
    with pytest.raises(CollectorUnavailable, match="Driver Not Loaded"):
        NvmlCollector(
            api=FakeNvml([], missing=True), clock=clock, sleep=clock.advance, background=False
        ).open()
    with pytest.raises(CollectorUnavailable, match="GPU 1 not found"):
        NvmlCollector(
            api=FakeNvml([FakeGpu(clock, 1.0)]),
            index=1,
            clock=clock,
            sleep=clock.advance,
            background=False,
        ).open()


def test_window_shorter_than_two_seconds_is_invalid():
    clock = FakeClock()
    c = NvmlCollector(
        api=FakeNvml([FakeGpu(clock, 300.0)]), clock=clock, sleep=clock.advance, background=False
    )
    c.open()
    r = _run(c, clock, 1.0)
    assert not r.valid
    assert "shorter than the 2 s" in (r.invalid_reason or "")


def test_a_counter_reading_zero_joules_is_invalid_not_free():
    clock = FakeClock()
    gpu = FakeGpu(clock, 300.0, power=False)
    gpu.frozen = True  # the counter never publishes a new value
    c = NvmlCollector(api=FakeNvml([gpu]), clock=clock, sleep=clock.advance, background=False)
    c.open()
    r = _run(c, clock, 3.0)
    assert not r.valid
    assert "not free inference" in (r.invalid_reason or "")


def test_sub_windows_need_two_seconds_each():
    clock = FakeClock()
    c = NvmlCollector(
        api=FakeNvml([FakeGpu(clock, 100.0)]), clock=clock, sleep=clock.advance, background=False
    )
    c.open()
    r = _run(c, clock, 6.0)  # valid as a whole, but 1.2 s sub-windows are too short
    assert r.valid and r.window_energy_j == ()


def test_memory_and_throttle_reasons_over_the_window():
    clock = FakeClock()
    gpu = FakeGpu(clock, 200.0)
    gpu.process_memory[os.getpid()] = 512 << 20
    c = NvmlCollector(api=FakeNvml([gpu]), clock=clock, sleep=clock.advance, background=False)
    c.open()
    gpu.reasons = HW_THERMAL  # before the window: not counted
    c.poll()
    gpu.reasons = SW_POWER_CAP
    c.begin_window(clock())
    clock.advance(1.0)
    c.poll()
    gpu.memory_used = 6 << 30
    clock.advance(1.0)
    c.poll()
    gpu.memory_used = 3 << 30
    clock.advance(1.0)
    r = c.end_window(clock(), queries=1, samples=1)
    assert _value(r, "gpu_memory_used_peak") == 6 << 30
    assert _value(r, "gpu_memory_process_peak") == 512 << 20
    assert _value(r, "throttle_reasons") == SW_POWER_CAP
    assert _value(r, "throttled") == 0.0  # a power cap alone is not throttling
    gpu.reasons = SW_POWER_CAP | HW_THERMAL
    r2 = _run(c, clock, 3.0)
    assert _value(r2, "throttled") == 1.0


@pytest.mark.skipif(HAS_NVIDIA, reason="this host has an NVIDIA driver")
def test_real_binding_without_a_gpu_explains_itself():
    with pytest.raises(CollectorUnavailable, match="nvml: cannot initialise NVML"):
        PynvmlApi().init()


def test_counter_update_period_is_measured_and_sets_the_minimum_window():
    clock = FakeClock()
    gpu = FakeGpu(clock, 300.0, period_s=0.15)
    c = NvmlCollector(api=FakeNvml([gpu]), clock=clock, sleep=clock.advance, background=False)
    c.open()
    assert c.update_period_s == pytest.approx(0.15, abs=0.005)
    assert c.min_window_s == pytest.approx(3.0, abs=0.1)  # 20 updates of 150 ms
    assert "updated every 150 ms" in (c.resolution or "")
    r = _run(c, clock, 2.5)
    assert not r.valid and "shorter than the 3" in (r.invalid_reason or "")


class _SlowProcessQueryGpu(FakeGpu):
    """The per-process memory query takes 40 ms (it walks every process on the GPU)."""

    def process_memory_bytes(self, pid: int) -> int | None:
        self.clock.advance(0.04)
        return super().process_memory_bytes(pid)


def test_slow_extra_queries_do_not_shift_the_power_timestamps():
    clock = FakeClock()
    gpu = _SlowProcessQueryGpu(clock, lambda t: 100.0 + 10.0 * t, counter=False)
    gpu.process_memory[os.getpid()] = 1 << 30
    c = NvmlCollector(api=FakeNvml([gpu]), clock=clock, sleep=clock.advance, background=False)
    c.open()
    c.begin_window(clock())
    read_at = []
    for _ in range(5):
        clock.advance(0.1)
        read_at.append(clock())  # the power is read now; the extras take 40 ms after it
        c.poll()
    (trace,) = c._traces
    placed = list(trace.t_ns[1:])
    r = c.end_window(clock(), queries=1, samples=1)
    assert placed == read_at  # not read_at + 20 ms (the midpoint of a 40 ms poll)
    assert _value(r, "gpu_memory_process_peak") == 1 << 30
