"""Third-party collectors plug in through entry points and are held to the declared interface:
a class deriving CollectorBase works with its defaults; one without ``from_options`` or without
the capability attributes is listed as unavailable with the fix, never probed or crashed on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

TP = [sys.executable, "-m", "tippingpoint"]

PLUGIN = '''
"""Collectors of a third party: one complete, two that miss part of the interface."""
from tippingpoint.core.schema import CollectorResult, Measurement, MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorBase


class TickCollector(CollectorBase):
    name = "ticks"

    def open(self):
        self.start = 0

    def begin_window(self, t_ns):
        self.start = t_ns

    def end_window(self, t_ns, *, queries, samples):
        return CollectorResult(
            name=self.name, source="ticks", method=MeasurementMethod.COUNTER,
            window_start_ns=self.start, window_end_ns=t_ns,
            measurements=(Measurement(quantity="queries", value=queries, unit="count"),),
        )


class NoFactory:
    name = "nofactory"


class Undeclared:
    name = "undeclared"

    @classmethod
    def from_options(cls, options):
        return cls()

    def open(self):
        pass

    def close(self):
        pass
'''


def _install(site: Path) -> None:
    (site / "tp_col_plugin").mkdir(parents=True)
    (site / "tp_col_plugin" / "__init__.py").write_text(PLUGIN)
    info = site / "tp_col_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tp-col-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [tippingpoint.collectors]
            ticks = tp_col_plugin:TickCollector
            nofactory = tp_col_plugin:NoFactory
            undeclared = tp_col_plugin:Undeclared
            """
        )
    )


def test_plugins_are_checked_against_the_declared_interface(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install(site)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    listed = subprocess.run(
        [*TP, "collectors", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["ticks"]["available"] is True and rows["ticks"]["energy"] is False
    assert rows["nofactory"]["available"] is False
    assert "from_options" in rows["nofactory"]["reason"]
    assert "CollectorBase" in rows["nofactory"]["reason"]
    assert rows["undeclared"]["available"] is False
    assert "is_energy" in rows["undeclared"]["reason"]
    assert "CollectorBase" in rows["undeclared"]["reason"]
    assert rows["memory"]["available"] is True  # the built-in ones are unaffected
