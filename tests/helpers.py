"""Helpers shared by the test modules: the CLI in a subprocess, short scenarios with the real
stop-rule semantics, and throwaway plugin distributions. Fixtures live in conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tippingpoint.core.io import read_report
from tippingpoint.core.schema import Report, ScenarioKind, ScenarioSettings, StopRule, WarmupRule
from tippingpoint.harness.config import scenario_settings

TP = [sys.executable, "-m", "tippingpoint"]
"""The CLI as this interpreter runs it."""

QUICK = ["--quick", "--min-queries", "20", "--min-duration", "0.05", "--warmup-duration", "0"]
"""Flags of a short real run from the CLI."""

TINY_WARMUP = WarmupRule(min_queries=3, min_duration_s=0.02)
TINY_STOP = StopRule(min_queries=50, min_duration_s=0.1, max_duration_s=5.0)


def tiny_scenario(
    kind: ScenarioKind = ScenarioKind.SINGLE_STREAM, batch: int = 1
) -> ScenarioSettings:
    """A scenario short enough for unit tests, with the real stop-rule semantics."""
    return scenario_settings(kind, batch, quick=True, warmup=TINY_WARMUP, stop=TINY_STOP)


def tp(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``tippingpoint ARGS`` in a subprocess, its output captured as text."""
    return subprocess.run(
        [*TP, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )


def assert_one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """The process exited with ``code`` and printed one ``error:`` line holding every needle."""
    assert proc.returncode == code, proc.stderr + proc.stdout
    err_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in err_lines[0]


def one_report(proc: subprocess.CompletedProcess[str]) -> Report:
    """The one report of a successful ``tippingpoint run ... --json``."""
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)
    return read_report(Path(entry["path"]))


def install_distribution(
    site: Path, name: str, entry_points: str, package: tuple[str, str] | None = None
) -> dict[str, str]:
    """A throwaway distribution ``name`` 0.1 in ``site``: its dist-info with ``entry_points``
    (the text of entry_points.txt) and, when given, ``package`` as (import name, source of its
    ``__init__.py``). Returns the environment that puts ``site`` on PYTHONPATH."""
    if package is not None:
        module, source = package
        (site / module).mkdir(parents=True)
        (site / module / "__init__.py").write_text(source)
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
