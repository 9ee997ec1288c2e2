"""``tippingpoint collectors`` lists what can run here and says why the rest cannot."""

from __future__ import annotations

import json
import subprocess

from .conftest import TP


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
    from tippingpoint.reports.io import read_report, report_files
    from tippingpoint.reports.schema import MeasurementMethod, RunFlag

    out = subprocess.run(
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
            "--idle-s",
            "0.2",
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
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
