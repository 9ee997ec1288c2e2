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
