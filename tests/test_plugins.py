"""A third-party backend, installed as its own distribution, plugs in through entry points."""

import json
import textwrap
from pathlib import Path

from tippingpoint.core.schema import RunStatus

from .helpers import install_distribution, one_report, tp

PLUGIN = '''
"""A backend that returns its inputs: the smallest complete plugin."""
from pathlib import Path

from tippingpoint.backends.base import (
    Availability, BackendDescription, Device, SessionBase, TensorSpec,
)


class EchoSession(SessionBase):
    inputs = (TensorSpec(name="x", shape=(None, 32), dtype="float32"),)
    outputs = (TensorSpec(name="y", shape=(None, 32), dtype="float32"),)

    def __init__(self, options):
        self.options = dict(options)

    def bind(self, feeds):
        out = [feeds[0].copy()]
        return lambda: out

    def describe(self):
        return BackendDescription(
            name="echo", runtime="tp-echo-plugin", runtime_version="0.1",
            device=Device.CPU, options=self.options,
        )


class EchoBackend:
    name = "echo"
    formats = (".onnx",)
    network = False

    def validate_options(self, options):
        pass

    def availability(self):
        return Availability(installed=True, runtime="tp-echo-plugin", version="0.1")

    def load(self, model: Path, options):
        return EchoSession(options)
'''


def _install_throwaway_distribution(site: Path) -> dict[str, str]:
    entry_points = textwrap.dedent(
        """\
        [tippingpoint.backends]
        echo = tp_echo_plugin:EchoBackend
        """
    )
    return install_distribution(site, "tp-echo-plugin", entry_points, ("tp_echo_plugin", PLUGIN))


def test_third_party_backend_is_listed_and_runs(tmp_path: Path) -> None:
    env = _install_throwaway_distribution(tmp_path / "site")

    listed = tp("backends", "--json", env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    names = {b["name"]: b for b in json.loads(listed.stdout)}
    assert names["echo"]["target"] == "tp_echo_plugin:EchoBackend"
    assert "onnxruntime" in names

    out = tmp_path / "r"
    ran = tp(
        "run",
        "-b",
        "echo",
        "-m",
        "mlp-tiny",
        "-s",
        "single-stream",
        "--quick",
        "--opt",
        "flavour=plain",
        "-o",
        str(out),
        "--json",
        env=env,
    )
    report = one_report(ran)
    assert report.status is RunStatus.COMPLETE
    assert report.backend is not None
    assert report.backend.runtime == "tp-echo-plugin" and report.backend.options == {
        "flavour": "plain"
    }


def test_without_the_distribution_the_name_is_unknown(tmp_path: Path) -> None:
    p = tp("run", "-b", "echo", "-o", str(tmp_path), timeout=60)
    assert p.returncode == 2 and "unknown backend 'echo'" in p.stderr


def _install_broken_distribution(site: Path) -> dict[str, str]:
    """A distribution whose entry points name a module that is not installed."""
    entry_points = textwrap.dedent(
        """\
        [tippingpoint.backends]
        broken = tp_missing_module:Backend

        [tippingpoint.collectors]
        brokencol = tp_missing_module:Collector
        """
    )
    return install_distribution(site, "tp-broken-plugin", entry_points)


def test_broken_plugin_is_listed_as_not_installed_with_the_cause(tmp_path: Path) -> None:
    env = _install_broken_distribution(tmp_path / "site")

    listed = tp("backends", "--json", env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    names = {b["name"]: b for b in json.loads(listed.stdout)}
    broken = names["broken"]
    assert broken["installed"] is False and broken["formats"] == []
    assert "No module named 'tp_missing_module'" in broken["install_hint"]
    assert "tp-broken-plugin" in broken["install_hint"]
    assert names["onnxruntime"]["installed"] is True  # the others are still listed

    table = tp("backends", env=env, timeout=60)
    assert table.returncode == 0 and "Traceback" not in table.stderr
    assert "broken" in table.stdout

    out = str(tmp_path / "r")
    ran = tp("run", "-b", "broken", "-m", "mlp-tiny", "--quick", "-o", out, env=env, timeout=60)
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith("error: backend 'broken' (tp_missing_module:Backend)")
    assert "No module named 'tp_missing_module'" in line and "reinstall or uninstall" in line


def test_broken_collector_plugin_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    env = _install_broken_distribution(tmp_path / "site")
    listed = tp("collectors", "--json", env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["brokencol"]["available"] is False
    assert "No module named 'tp_missing_module'" in rows["brokencol"]["reason"]
    assert "memory" in rows and rows["memory"]["available"] is True
