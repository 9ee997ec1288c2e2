"""Helpers and fixtures for the HTTP tests: real servers on 127.0.0.1 (the reference server on
a thread, the fault server in a subprocess), a tiny ONNX model built with onnx.helper, a server
frozen mid-run, and a self-signed certificate.

A pytest plugin (registered in conftest.py): its fixtures reach every test module without an
import; its helpers are imported by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from tippingpoint.core.schema import ScenarioKind, ScenarioSettings, StopRule, WarmupRule

if TYPE_CHECKING:
    from tippingpoint.server.background import BackgroundServer

FAULT_SERVER = Path(__file__).with_name("http_fault_server.py")
SHORT_WARMUP = WarmupRule(min_queries=3, min_duration_s=0.0)
SHORT_STOP = StopRule(min_queries=60, min_duration_s=0.2, max_duration_s=5.0)


def short_scenario(
    kind: ScenarioKind = ScenarioKind.SINGLE_STREAM, **update: object
) -> ScenarioSettings:
    """A short scenario with the real stop-rule semantics."""
    from tippingpoint.harness.config import scenario_settings

    sc = scenario_settings(kind, 1, quick=True, warmup=SHORT_WARMUP, stop=SHORT_STOP)
    return sc.model_copy(update=update)


def write_add_model(path: Path) -> Path:
    """y = a + b for two float32 [N, 4] inputs, plus an int64 [N, 2] input echoed as z."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"]), helper.make_node("Identity", ["i"], ["z"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("i", TensorProto.INT64, ["N", 2]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("z", TensorProto.INT64, ["N", 2]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def add_feeds(n: int = 1) -> list[np.ndarray]:
    """Inputs of the add model, seeded."""
    rng = np.random.default_rng(1)
    return [
        rng.standard_normal((n, 4)).astype(np.float32),
        rng.standard_normal((n, 4)).astype(np.float32),
        rng.integers(0, 100, size=(n, 2)).astype(np.int64),
    ]


@contextmanager
def fault_server() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The fault-injecting server in a subprocess: (base URL, process)."""
    proc = subprocess.Popen([sys.executable, str(FAULT_SERVER)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip())
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@contextmanager
def serve_process(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``tippingpoint serve ARGS --port 0`` in a subprocess: (base URL, process)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tippingpoint", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert " on http://" in line, f"serve did not start: {line!r}"
        yield line.split(" on ")[1].split()[0], proc
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


# The coordinated-omission check (test_http_stall and the raw client's): a server frozen for
# STALL_S seconds, STALL_AT_S into an open-loop run of RUN_S seconds at RATE requests/s.
RATE = 200.0
RUN_S = 10.0
STALL_AT_S = 4.5
STALL_S = 1.0


def freeze(proc: subprocess.Popen[str], at_s: float, for_s: float) -> threading.Timer:
    """SIGSTOP the whole server process at ``at_s`` from now, SIGCONT ``for_s`` later."""

    def stop() -> None:
        os.kill(proc.pid, signal.SIGSTOP)
        threading.Timer(for_s, os.kill, (proc.pid, signal.SIGCONT)).start()

    timer = threading.Timer(at_s, stop)
    timer.start()
    return timer


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by the openssl CLI."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def add_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """The reference server on a thread, serving the add model (one per test module)."""
    from tippingpoint.server.app import ServerConfig
    from tippingpoint.server.background import BackgroundServer
    from tippingpoint.server.repository import load_repository

    path = write_add_model(tmp_path_factory.mktemp("m") / "add.onnx")
    with BackgroundServer(load_repository([str(path)]), ServerConfig(port=0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def faults() -> Iterator[str]:
    """The base URL of the fault server in a subprocess (one per test module)."""
    with fault_server() as (url, _):
        yield url
