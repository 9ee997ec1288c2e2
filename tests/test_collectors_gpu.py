"""NVML for real on a GPU machine: counter and sampled energy of one 30 s window must agree."""

from __future__ import annotations

import shutil
import time

import pytest

from tippingpoint.harness.collectors.nvml import NvmlCollector


def _cuda() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU: runs NVML against real hardware")
def test_counter_and_sampled_energy_agree_within_five_percent():
    import torch

    a = torch.randn(4096, 4096, device="cuda")
    c = NvmlCollector(interval_s=0.02)
    c.open()
    try:
        if not c.has_counter or not c.has_power:
            pytest.skip("this GPU lacks the energy counter or power readings")
        for _ in range(50):  # reach a steady power draw before the window
            a = (a @ a).tanh_()
        torch.cuda.synchronize()
        c.begin_window(time.perf_counter_ns())
        end = time.monotonic() + 30.0
        n = 0
        while time.monotonic() < end:
            a = (a @ a).tanh_()
            n += 1
            if n % 20 == 0:
                torch.cuda.synchronize()
        torch.cuda.synchronize()
        r = c.end_window(time.perf_counter_ns(), queries=n, samples=n)
    finally:
        c.close()
    values = {m.quantity: m.value for m in r.measurements}
    counter, sampled = values["energy"], values["energy[power_sampled]"]
    print(
        f"\nNVML 30 s window: counter {counter:.1f} J, sampled {sampled:.1f} J, "
        f"ratio {sampled / counter:.4f}, {values.get('average_power', 0):.1f} W"
    )
    assert r.valid, r.invalid_reason
    assert abs(sampled - counter) / counter < 0.05
