"""Interop with an independent server: Seldon's MLServer (from PyPI, the dev extra), started
on loopback, serving the suite model ``tabular-mlp`` over KServe v2 REST and gRPC; the http and
grpc backends run against it and their outputs equal ONNX Runtime's on the same inputs.

MLServer has no ONNX runtime of its own, so the model is served through a custom runtime
(tests/mlserver_runtime.py, MLServer's documented way): MLServer parses, validates and encodes
every message, the runtime only calls ONNX Runtime. Slow (MLServer takes seconds to start):
marked ``interop``, run by ``make test-interop`` (CI), left out of ``make test``."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.http_helpers import short_scenario
from tippingpoint.core.schema import ScenarioKind, SpecSource, StopRule
from tippingpoint.harness.inputs import query_feeds
from tippingpoint.harness.network import run_network_scenario
from tippingpoint.models.registry import resolve_model

pytestmark = [pytest.mark.interop, pytest.mark.slow]
# found, not imported: importing mlserver in the test process registers its KServe protos in
# protobuf's default pool, where tritonclient's (test_interop_grpc) then collide
if importlib.util.find_spec("mlserver") is None:
    pytest.skip("mlserver is in the dev extra, which make test installs", allow_module_level=True)

RUNTIME = Path(__file__).with_name("mlserver_runtime.py")
STOP = StopRule(min_queries=40, min_duration_s=0.1, max_duration_s=5.0)
READY_S = 120.0


@dataclass(frozen=True)
class MlServer:
    """A running MLServer: its REST and gRPC endpoints and the model file it serves."""

    http: str
    grpc: str
    model: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tensors(session_specs: object) -> list[dict[str, object]]:
    from tippingpoint.backends.http.kserve import v2_datatype

    return [
        {
            "name": s.name,
            "datatype": v2_datatype(s.dtype),
            "shape": [-1 if d is None else d for d in s.shape],
        }
        for s in session_specs  # type: ignore[attr-defined]
    ]


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlServer]:
    """MLServer serving ``tabular-mlp`` (metadata with its tensors) and ``tabular-mlp-bare``
    (the same file, metadata listing no tensors, as custom predictors often do)."""
    from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend

    root = tmp_path_factory.mktemp("mlserver")
    model = resolve_model("tabular-mlp", "fp32", ".onnx").path
    with OnnxRuntimeCpuBackend().load(model, {}) as s:
        inputs, outputs = _tensors(s.inputs), _tensors(s.outputs)
    shutil.copy(RUNTIME, root / "mlserver_runtime.py")
    http_port, grpc_port = _free_port(), _free_port()
    settings = {
        "http_port": http_port,
        "grpc_port": grpc_port,
        "host": "127.0.0.1",
        "metrics_endpoint": None,
        "parallel_workers": 0,
        "load_models_at_startup": True,
    }
    (root / "settings.json").write_text(json.dumps(settings))
    for name, meta in (("tabular-mlp", True), ("tabular-mlp-bare", False)):
        folder = root / name
        folder.mkdir()
        doc: dict[str, object] = {
            "name": name,
            "implementation": "mlserver_runtime.OnnxModel",
            "platform": "onnxruntime-custom",
            "versions": ["7"],
            "parameters": {"uri": str(model), "version": "7"},
        }
        if meta:
            doc |= {"inputs": inputs, "outputs": outputs}
        (folder / "model-settings.json").write_text(json.dumps(doc))
    log = (root / "mlserver.log").open("w")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    mlserver_bin = Path(sys.executable).with_name("mlserver")
    proc = subprocess.Popen(
        [str(mlserver_bin), "start", str(root)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    http = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + READY_S
        while True:
            try:
                with urllib.request.urlopen(f"{http}/v2/models/tabular-mlp-bare/ready", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        "MLServer did not start:\n" + (root / "mlserver.log").read_text()[-3000:]
                    )
                time.sleep(0.3)
        yield MlServer(http, f"grpc://127.0.0.1:{grpc_port}", model)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _local(model: Path, batch: int = 4) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Seeded inputs of ``model`` and ONNX Runtime's outputs on them."""
    from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend

    with OnnxRuntimeCpuBackend().load(model, {}) as s:
        feeds = query_feeds(s.inputs, batch, {}, 0)
        return list(feeds), [np.asarray(o) for o in s.bind(feeds)()]


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_outputs_and_scenarios_against_mlserver(mlserver: MlServer, transport: str) -> None:
    from tippingpoint.backends.grpc.backend import GrpcBackend
    from tippingpoint.backends.http import HttpBackend

    feeds, expected = _local(mlserver.model)
    if transport == "rest":  # MLServer has no binary tensor extension: JSON tensors
        opts = {"endpoint": mlserver.http, "model_name": "tabular-mlp", "binary": False}
        session = HttpBackend().load(mlserver.model, opts)
    else:
        opts = {"endpoint": mlserver.grpc, "model_name": "tabular-mlp"}
        session = GrpcBackend().load(mlserver.model, opts)  # type: ignore[assignment]
    with session as s:
        got = s.bind(feeds)()
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
        remote = s.remote_model()
        runs = [
            run_network_scenario(s, feeds, short_scenario(stop=STOP)),
            run_network_scenario(
                s, feeds, short_scenario(ScenarioKind.SERVER, target_rate_qps=100.0, stop=STOP)
            ),
            run_network_scenario(
                s, feeds, short_scenario(ScenarioKind.CONCURRENCY, concurrency=4, stop=STOP)
            ),
        ]
    assert (remote.name, remote.version, remote.platform) == (
        "tabular-mlp",
        "7",
        "onnxruntime-custom",
    )
    assert remote.specs_from is SpecSource.METADATA
    for run in runs:
        assert run.http.error_rate == 0 and run.http.requests >= 40


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_metadata_without_tensors_takes_the_local_files(mlserver: MlServer, transport: str) -> None:
    from tippingpoint.backends.grpc.backend import GrpcBackend
    from tippingpoint.backends.http import HttpBackend

    feeds, expected = _local(mlserver.model, 2)
    if transport == "rest":
        opts = {"endpoint": mlserver.http, "model_name": "tabular-mlp-bare", "binary": False}
        session = HttpBackend().load(mlserver.model, opts)
    else:
        opts = {"endpoint": mlserver.grpc, "model_name": "tabular-mlp-bare"}
        session = GrpcBackend().load(mlserver.model, opts)  # type: ignore[assignment]
    with session as s:
        assert s.remote_model().specs_from is SpecSource.FILE
        (got,) = s.bind(feeds)()
    np.testing.assert_allclose(got, expected[0], rtol=1e-5, atol=1e-6)


def test_a_run_against_mlserver_from_the_command_line(mlserver: MlServer, tmp_path: Path) -> None:
    from tests.helpers import tp

    proc = tp(
        "run", "-m", "tabular-mlp", "--endpoint", mlserver.grpc, "--opt", "model_name=tabular-mlp",
        "-s", "single-stream", "--min-queries", "20", "--min-duration", "0.05",
        "--warmup-duration", "0", "--idle-s", "0", "--out", str(tmp_path), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)
    report = json.loads(Path(entry["path"]).read_text())
    assert report["status"] == "complete" and report["http"]["protocol"] == "kserve-v2-grpc"
    assert report["model"]["remote"]["platform"] == "onnxruntime-custom"
