"""Board sources against fake trees and real firmware text: hwmon, Jetson INA3221, Pi 5 PMIC."""

from __future__ import annotations

import array
from itertools import pairwise
from pathlib import Path

import pytest

from tippingpoint.core.schema import MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.hwmon import HwmonCollector
from tippingpoint.harness.collectors.jetson import JetsonCollector
from tippingpoint.harness.collectors.rpi import (
    GENCMD_TAG,
    IOCTL_MBOX_PROPERTY,
    MAX_STRING,
    RpiPmicCollector,
    VcioGencmd,
    parse_pmic,
    parse_throttled,
)

from .fakes.sysfs import FakeClock, FakeTree, add_hwmon

FIXTURES = Path(__file__).parent / "fixtures"
PMIC_IDLE = (FIXTURES / "pmic_read_adc_pi5_idle.txt").read_text()
PMIC_LOAD = (FIXTURES / "pmic_read_adc_pi5_load.txt").read_text()


def _value(result, quantity):
    return next(m.value for m in result.measurements if m.quantity == quantity)


def _run(c, clock: FakeClock, seconds: float, step: float):
    c.begin_window(clock())
    for _ in range(round(seconds / step)):
        clock.advance(step)
        c.poll()
    return c.end_window(clock(), queries=10, samples=10)


# -- generic hwmon ------------------------------------------------------------------------


def test_hwmon_power_in_microwatts_is_sampled_and_found_by_name(tmp_path):
    clock = FakeClock()
    tree = FakeTree(tmp_path)
    add_hwmon(tree, 0, "acpitz", "/sys/devices/virtual/thermal/thermal_zone0", {"temp1_input": 4e4})
    # hwmon3 today; the number changes between boots, the name does not
    add_hwmon(
        tree,
        3,
        "ina219",
        "/sys/devices/platform/soc/i2c/1-0040",
        {"power1_input": lambda: 3_200_000, "power1_label": "board"},
    )
    c = HwmonCollector(
        device_name="ina219", root=tree.root, opener=tree.opener, clock=clock, background=False
    )
    c.open()
    r = _run(c, clock, 5.0, 0.05)
    assert r.valid, r.invalid_reason
    assert r.method is MeasurementMethod.SAMPLED
    assert _value(r, "energy") == pytest.approx(16.0)  # 3.2 W x 5 s
    assert _value(r, "power_samples") == 101
    assert r.sample_rate_hz == pytest.approx(20.0)
    assert r.source == "/sys/class/hwmon/hwmon3 (ina219)"


def test_hwmon_energy_counter_in_microjoules_is_preferred(tmp_path):
    clock = FakeClock()
    tree = FakeTree(tmp_path)
    t0 = clock()
    add_hwmon(
        tree,
        1,
        "amd_energy",
        "/sys/devices/platform/amd_energy.0",
        {
            "energy1_input": lambda: 10_000_000 + (clock() - t0) * 45 // 1000,  # 45 W
            "energy1_label": "Esocket0",
            "power1_input": 1,
        },
    )
    c = HwmonCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    r = _run(c, clock, 2.0, 0.5)
    assert r.method is MeasurementMethod.COUNTER
    assert _value(r, "energy") == pytest.approx(90.0)


def test_hwmon_too_few_samples_is_invalid(tmp_path):
    clock = FakeClock()
    tree = FakeTree(tmp_path)
    add_hwmon(tree, 0, "ina219", "/sys/devices/i2c-1/1-0041", {"power1_input": 2_000_000})
    c = HwmonCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    r = _run(c, clock, 1.0, 0.1)
    assert not r.valid
    assert "only 11 power samples" in (r.invalid_reason or "")


def test_hwmon_unreadable_sensor_and_no_sensor_are_reasons(tmp_path):
    tree = FakeTree(tmp_path)
    add_hwmon(tree, 0, "nct6775", "/sys/devices/platform/nct6775.656", {"in0_input": 900})
    with pytest.raises(CollectorUnavailable, match=r"no device with .*devices: nct6775"):
        HwmonCollector(root=tree.root, opener=tree.opener, background=False).open()
    add_hwmon(tree, 1, "ina219", "/sys/devices/i2c-1/1-0040", {"power1_input": 2_000_000})
    tree.deny("/sys/class/hwmon/hwmon1/power1_input")
    with pytest.raises(CollectorUnavailable, match="hwmon1/power1_input is not readable"):
        HwmonCollector(root=tree.root, opener=tree.opener, background=False).open()


# -- Jetson INA3221 -------------------------------------------------------------------------

ORIN_I2C = "/sys/devices/platform/bus@0/c240000.i2c/i2c-1/1-0040"


def _orin(tree: FakeTree, vdd_in_ma: int = 1500) -> None:
    add_hwmon(
        tree,
        2,
        "ina3221",
        ORIN_I2C,
        {
            "in1_label": "VDD_IN",
            "in1_input": 5040,  # mV
            "curr1_input": lambda: vdd_in_ma,  # mA
            "in2_label": "VDD_CPU_GPU_CV",
            "in2_input": 5032,
            "curr2_input": 600,
            "in3_label": "VDD_SOC",
            "in3_input": 5040,
            "curr3_input": 400,
            "in4_label": "sum of shunt voltages",
            "in4_input": 0,
            "in7_input": 0,
        },
    )
    tree.link("/sys/bus/i2c/drivers/ina3221/1-0040", ORIN_I2C)


def test_jetson_jetpack5_vdd_in_is_the_module_total(tmp_path):
    clock = FakeClock()
    tree = FakeTree(tmp_path)
    _orin(tree)
    c = JetsonCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    assert [ch.name for ch in c.channels] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    r = _run(c, clock, 10.0, 0.05)
    assert r.valid, r.invalid_reason
    assert r.scope == "module-input"
    assert "VDD_IN" in r.source and "JetPack 5/6" in r.source
    # 5.040 V x 1.5 A = 7.56 W for 10 s; the other rails are inside it, not added
    assert _value(r, "energy") == pytest.approx(75.6)
    cpu_gpu = next(m for m in r.measurements if m.quantity == "energy[VDD_CPU_GPU_CV]")
    assert cpu_gpu.value == pytest.approx(5.032 * 0.6 * 10)
    assert "CPU, GPU and CV cores combined (not the GPU alone)" in (cpu_gpu.note or "")
    assert not any("GPU]" in m.quantity and "CPU" not in m.quantity for m in r.measurements)


def test_jetson_jetpack4_iio_layout(tmp_path):
    clock = FakeClock()
    tree = FakeTree(tmp_path)
    iio = "/sys/devices/7000c400.i2c/i2c-1/1-0040/iio:device0"
    for i, (rail, mw) in enumerate(
        (("POM_5V_IN", 4100), ("POM_5V_GPU", 900), ("POM_5V_CPU", 1200))
    ):
        tree.write(f"{iio}/rail_name_{i}", rail)
        tree.write(f"{iio}/in_power{i}_input", mw)
        tree.write(f"{iio}/in_current{i}_input", mw // 5)
        tree.write(f"{iio}/in_voltage{i}_input", 5000)
    tree.link("/sys/bus/i2c/drivers/ina3221x/1-0040", "/sys/devices/7000c400.i2c/i2c-1/1-0040")
    c = JetsonCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    r = _run(c, clock, 5.0, 0.05)
    assert r.valid, r.invalid_reason
    assert "JetPack 4" in r.source
    assert _value(r, "energy") == pytest.approx(4.1 * 5)


def test_jetson_without_a_total_rail_reports_board_rails(tmp_path):
    clock = FakeClock()
    tree = FakeTree(tmp_path)
    add_hwmon(
        tree,
        0,
        "ina3221",
        ORIN_I2C,
        {
            "in1_label": "VDD_GPU_SOC",
            "in1_input": 5000,
            "curr1_input": 1000,
            "in2_label": "VDD_CPU_CV",
            "in2_input": 5000,
            "curr2_input": 400,
        },
    )
    c = JetsonCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()
    r = _run(c, clock, 5.0, 0.05)
    assert r.scope == "board-rails"
    energy = next(m for m in r.measurements if m.quantity == "energy")
    assert energy.value == pytest.approx(7.0 * 5)
    assert "no module-input rail" in (energy.note or "")


def test_not_a_jetson(tmp_path):
    with pytest.raises(CollectorUnavailable, match="no INA3221 rails"):
        JetsonCollector(root=tmp_path, background=False).open()


# -- Raspberry Pi 5 PMIC ---------------------------------------------------------------------


def test_parse_pmic_real_text_by_hand():
    rails = {r.name: r for r in parse_pmic(PMIC_LOAD)}
    assert len(rails) == 12  # EXT5V and BATT have a voltage only
    assert "EXT5V" not in rails and "BATT" not in rails
    assert rails["VDD_CORE"].watts == pytest.approx(5.03652 * 0.8936988)
    assert sum(r.watts for r in rails.values()) == pytest.approx(5.9216122, abs=1e-6)
    idle = sum(r.watts for r in parse_pmic(PMIC_IDLE))
    assert idle == pytest.approx(1.7667065, abs=1e-6)
    assert parse_pmic('error=1 error_msg="Command not registered"\n') == []


def test_parse_throttled():
    assert parse_throttled("throttled=0x50005\n") == 0x50005
    assert parse_throttled("throttled=0x0") == 0
    with pytest.raises(ValueError):
        parse_throttled("error=2")


def test_pi5_collector_integrates_the_rail_sum():
    clock = FakeClock()
    answers = {"text": PMIC_IDLE}
    c = RpiPmicCollector(gencmd=lambda cmd: answers["text"], clock=clock, background=False)
    c.open()
    c.begin_window(clock())
    for i in range(60):
        clock.advance(0.1)
        answers["text"] = PMIC_LOAD if i < 30 else PMIC_IDLE
        c.poll()
    r = c.end_window(clock(), queries=1, samples=1)
    assert r.valid, r.invalid_reason
    assert r.scope == "board-rails"
    energy = next(m for m in r.measurements if m.quantity == "energy")
    assert "excludes conversion losses" in (energy.note or "")
    # samples at 0.1 s: 30 load samples then 30 idle, after one idle sample at the start
    watts = [1.7667065] + [5.9216122] * 30 + [1.7667065] * 30
    by_hand = sum((a + b) / 2 * 0.1 for a, b in pairwise(watts))
    assert energy.value == pytest.approx(by_hand, abs=1e-5)


def test_pi5_ten_hertz_needs_five_seconds():
    clock = FakeClock()
    c = RpiPmicCollector(gencmd=lambda cmd: PMIC_IDLE, clock=clock, background=False)
    c.open()
    r = _run(c, clock, 2.0, 0.1)
    assert not r.valid and "power samples" in (r.invalid_reason or "")


def test_vcio_mailbox_buffer_follows_vcgencmd_layout():
    seen = {}

    def fake_ioctl(fd: int, request: int, buf: array.array) -> int:
        raw = memoryview(buf).cast("B")
        seen["request"] = request
        seen["header"] = list(buf[:6])
        seen["command"] = bytes(raw[24:64]).split(b"\0")[0]
        answer = PMIC_LOAD.encode() + b"\0"
        raw[24 : 24 + len(answer)] = answer
        buf[1] = 0x80000000  # request successful
        return 0

    g = VcioGencmd(opener=lambda path, flags: 99, ioctl=fake_ioctl)
    text = g("pmic_read_adc")
    assert seen["request"] == IOCTL_MBOX_PROPERTY
    assert seen["header"] == [(6 + MAX_STRING // 4 + 1) * 4, 0, GENCMD_TAG, MAX_STRING, 0, 0]
    assert seen["command"] == b"pmic_read_adc"
    assert len(parse_pmic(text)) == 12
    assert len(PMIC_LOAD) < MAX_STRING


def test_jetson_rail_readable_by_root_only_says_how_to_fix(tmp_path):
    tree = FakeTree(tmp_path)
    _orin(tree)
    tree.deny("/sys/class/hwmon/hwmon2/curr1_input")
    with pytest.raises(CollectorUnavailable) as info:
        JetsonCollector(root=tree.root, opener=tree.opener, background=False).open()
    assert str(info.value) == (
        "jetson: /sys/class/hwmon/hwmon2/curr1_input is not readable; run as root or grant "
        "read access"
    )


def _fake_vcgencmd(tmp_path: Path) -> Path:
    """A ``vcgencmd`` executable answering ``version`` and ``pmic_read_adc`` like a Pi 5."""
    (tmp_path / "pmic.txt").write_text(PMIC_IDLE)
    exe = tmp_path / "vcgencmd"
    exe.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  version) echo "Nov 27 2026 12:00:00 version fake (release)" ;;\n'
        f'  pmic_read_adc) cat "{tmp_path / "pmic.txt"}" ;;\n'
        '  *) echo "error=1 error_msg=\\"Command not registered\\"" ; exit 1 ;;\n'
        "esac\n"
    )
    exe.chmod(0o755)
    return exe


def test_pi_without_vcio_access_falls_back_to_vcgencmd(tmp_path):
    from tippingpoint.harness.collectors.rpi import VcgencmdCli, open_gencmd

    def no_access(path: str, flags: int) -> int:
        raise PermissionError(13, "Permission denied", path)  # not in the 'video' group

    cli = VcgencmdCli(str(_fake_vcgencmd(tmp_path)))
    gencmd = open_gencmd(VcioGencmd(opener=no_access), cli)
    assert gencmd is cli
    clock = FakeClock()
    c = RpiPmicCollector(gencmd=gencmd, clock=clock, background=False)
    c.open()
    assert c.transport == "vcgencmd"
    assert c.source() == "pmic_read_adc via vcgencmd (12 rails)"
    r = _run(c, clock, 6.0, 0.1)
    assert r.valid, r.invalid_reason
    assert _value(r, "average_power") == pytest.approx(1.7667065, rel=1e-6)


def test_pi_with_neither_vcio_nor_vcgencmd_says_why(tmp_path):
    from tippingpoint.harness.collectors.rpi import VcgencmdCli, open_gencmd

    missing = VcioGencmd(path=str(tmp_path / "vcio"))  # a real open() of a missing device
    with pytest.raises(CollectorUnavailable) as info:
        open_gencmd(missing, VcgencmdCli(str(tmp_path / "no-vcgencmd")))
    msg = str(info.value)
    assert msg.startswith(f"cannot open {tmp_path / 'vcio'} (No such file or directory)")
    assert "add the user to the 'video' group" in msg
