"""``tippingpoint collectors`` lists what can run here and says why the rest cannot."""

from __future__ import annotations

import json
import subprocess

from .helpers import TP


def test_collectors_command_lists_availability_and_reasons():
    out = subprocess.run(
        [*TP, "collectors", "--json", "--idle-watts", "3", "--peak-watts", "12"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert {"rapl", "nvml", "hwmon", "jetson", "rpi5", "estimate", "cpu", "memory"} <= set(rows)
    assert rows["cpu"]["available"] is True
    assert rows["estimate"]["available"] is True and rows["estimate"]["energy"] is True
    for name, row in rows.items():
        assert row["available"] or row["reason"].startswith(f"{name.split('-')[0]}"), row
    assert rows["meter-command"]["available"] is False
    assert "no command given" in rows["meter-command"]["reason"]


def test_run_with_collectors_writes_them_into_the_report(tmp_path):
    from tippingpoint.core.io import read_report, report_files
    from tippingpoint.core.schema import MeasurementMethod, RunFlag

    out = _run(
        tmp_path,
        "--collect",
        "cpu",
        "--collect",
        "estimate",
        "--collect",
        "meter-command",
        "--idle-watts",
        "2",
        "--peak-watts",
        "8",
    )
    assert out.returncode == 0, out.stderr
    assert "collector skipped" in out.stdout + out.stderr
    (report,) = [read_report(p) for p in report_files([tmp_path])]
    section = report.collectors
    assert section.requested == ("cpu", "estimate", "meter-command")
    assert section.ran == ("cpu", "estimate")
    assert [s.name for s in section.skipped] == ["meter-command"]
    assert section.energy is not None
    assert section.energy.method is MeasurementMethod.ESTIMATED
    assert section.energy.idle_watts_before is not None
    assert RunFlag.ENERGY_ESTIMATED in report.flags


def _run(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *TP,
            "run",
            "-m",
            "mlp-tiny",
            "-s",
            "single-stream",
            "--quick",
            "--min-duration",
            "0.3",
            "--idle-s",
            "0.2",
            "-o",
            str(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
    )


def test_run_takes_the_estimates_watts_from_a_device_profile(tmp_path):
    from tippingpoint.core.io import read_report, report_files

    out = _run(tmp_path, "--collect", "estimate", "--device", "rpi5")
    assert out.returncode == 0, out.stderr
    (report,) = [read_report(p) for p in report_files([tmp_path])]
    (est,) = report.collectors.results
    assert est.source == "estimate (profile rpi5)"
    assert est.formula is not None
    assert "P_idle = 3 W, P_peak = 12 W" in est.formula and "(profile rpi5)" in est.formula
    assert (
        report.collectors.energy is not None and "profile rpi5" in report.collectors.energy.source
    )


def test_run_rejects_an_unknown_device_profile(tmp_path):
    out = _run(tmp_path, "--collect", "estimate", "--device", "no-such-board")
    assert out.returncode == 2
    assert "no device profile named 'no-such-board'" in out.stderr + out.stdout


def test_run_passes_the_hwmon_device_meter_rate_and_gpu_index(tmp_path):
    from tippingpoint.core.io import read_report, report_files

    out = _run(
        tmp_path,
        "--collect",
        "hwmon",
        "--hwmon-device",
        "no-such-sensor",
        "--collect",
        "meter-command",
        "--meter-command",
        "echo 4.0",
        "--meter-rate",
        "25",
        "--gpu-index",
        "1",
    )
    assert out.returncode == 0, out.stderr
    (report,) = [read_report(p) for p in report_files([tmp_path])]
    skipped = {s.name: s.reason for s in report.collectors.skipped}
    assert "hwmon" in skipped and "no-such-sensor" in skipped["hwmon"]
    meter = next(r for r in report.collectors.results if r.name == "meter-command")
    # polled at the asked 25 Hz (the default is 5 Hz); the rate in the report is the achieved one
    assert meter.sample_rate_hz is not None and meter.sample_rate_hz > 10
