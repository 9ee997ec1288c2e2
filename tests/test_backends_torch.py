"""PyTorch backend on real torch.export programs (CPU here; CUDA tests skip without a GPU)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.tflite_build import forward, random_mlp
from tippingpoint.backends.base import Backend, Session
from tippingpoint.backends.phases import PhaseTimedSession, TimedRegion, summarize_phases
from tippingpoint.core.errors import (
    InvalidOptionError,
    ModelFileError,
    ModelLoadError,
    RuntimeNotInstalledError,
)
from tippingpoint.core.types import Device
from tippingpoint.harness.inputs import generate_feeds

torch = pytest.importorskip("torch", reason="torch is the torch extra")

from tests.torch_build import export_pt2, torch_mlp  # noqa: E402
from tippingpoint.backends.torch_backend import TorchBackend  # noqa: E402

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(
    not CUDA, reason="needs a CUDA GPU: torch.cuda.is_available() is False on this machine"
)

LAYERS = random_mlp([32, 64, 10], seed=1)
# stated tolerances against the float64-free numpy reference, relative to max |logit|
TOLERANCE = {"fp32": 1e-5, "fp16": 5e-3, "bf16": 3e-2}


@pytest.fixture(scope="module")
def pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_pt2(tmp_path_factory.mktemp("torch") / "mlp.pt2", LAYERS)


def test_backend_satisfies_protocol() -> None:
    assert isinstance(TorchBackend(), Backend)


def test_availability_does_not_import_torch() -> None:
    code = (
        "import sys; from tippingpoint.backends.torch_backend import TorchBackend;"
        "a = TorchBackend().availability(); print(a.installed, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "False"]


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_cpu_eager_matches_reference(pt2: Path, dtype: str) -> None:
    with TorchBackend().load(pt2, {"dtype": dtype}) as session:
        assert isinstance(session, Session)
        assert [(s.shape, s.dtype) for s in session.inputs] == [((None, 32), "float32")]
        assert [(s.shape, s.dtype) for s in session.outputs] == [((None, 10), "float32")]
        feeds = generate_feeds(session.inputs, 8, {}, seed=2)
        out = session.bind(feeds)()
        desc = session.describe()
    ref = forward(LAYERS, feeds[0])
    assert out[0].dtype == np.float32 and out[0].shape == (8, 10)
    np.testing.assert_allclose(out[0], ref, rtol=0, atol=TOLERANCE[dtype] * np.abs(ref).max())
    assert desc.device is Device.CPU
    assert desc.runtime == "torch"
    assert desc.options["dtype"] == dtype
    assert desc.options["timed_region"] == TimedRegion.COMPUTE.value
    assert desc.providers == ("eager",)


@pytest.mark.slow
def test_cpu_compile_matches_eager(pt2: Path) -> None:
    with TorchBackend().load(pt2, {}) as eager:
        feeds = generate_feeds(eager.inputs, 4, {}, seed=3)
        expected = eager.bind(feeds)()[0]
    with TorchBackend().load(pt2, {"mode": "compile"}) as compiled:
        call = compiled.bind(feeds)
        first, second = call()[0], call()[0]
        desc = compiled.describe()
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(first, second)
    assert desc.providers == ("compile:inductor",)


def test_threads_are_applied_and_restored(pt2: Path) -> None:
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    session = TorchBackend().load(pt2, {"threads": wanted})
    assert torch.get_num_threads() == wanted
    assert session.describe().threads == wanted
    session.close()
    assert torch.get_num_threads() == before


def test_cpu_session_has_no_phase_samples(pt2: Path) -> None:
    with TorchBackend().load(pt2, {}) as session:
        assert isinstance(session, PhaseTimedSession)
        assert session.phase_samples() is None


@pytest.mark.skipif(CUDA, reason="checks the CPU-only error; this machine has CUDA")
def test_cuda_without_gpu_is_a_clear_error(pt2: Path) -> None:
    with pytest.raises(RuntimeNotInstalledError, match="cannot use CUDA") as info:
        TorchBackend().load(pt2, {"device": "cuda"})
    assert "device=cpu" in info.value.hint


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_cuda_matches_reference_and_times_phases(pt2: Path, dtype: str) -> None:
    with TorchBackend().load(pt2, {"device": "cuda", "dtype": dtype}) as session:
        feeds = generate_feeds(session.inputs, 16, {}, seed=4)
        call = session.bind(feeds)
        call()
        session.reset_phases()
        outs = [call()[0] for _ in range(5)]
        samples = session.phase_samples()
        desc = session.describe()
    ref = forward(LAYERS, feeds[0])
    for out in outs:
        np.testing.assert_allclose(out, ref, rtol=0, atol=TOLERANCE[dtype] * np.abs(ref).max())
    assert samples is not None and len(samples) == 5
    assert min(*samples.h2d_ns, *samples.compute_ns, *samples.d2h_ns) > 0
    phases = summarize_phases(samples, TimedRegion.COPIES_AND_COMPUTE)
    assert phases is not None and phases.compute.count == 5
    assert desc.device is Device.CUDA and desc.device_name
    assert desc.options["timed_region"] == "h2d+compute+d2h"
    assert "cudnn.benchmark" in desc.options


@pytest.mark.gpu
@needs_cuda
def test_cuda_compile_and_flags(pt2: Path) -> None:
    options = {"device": "cuda", "mode": "compile", "tf32": True, "cudnn_benchmark": True}
    with TorchBackend().load(pt2, options) as session:
        assert torch.backends.cuda.matmul.allow_tf32 is True
        feeds = generate_feeds(session.inputs, 2, {}, seed=5)
        out = session.bind(feeds)()[0]
        desc = session.describe()
    assert torch.backends.cudnn.benchmark is False  # restored on close
    ref = forward(LAYERS, feeds[0])
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-2 * np.abs(ref).max())  # TF32
    assert desc.options["cudnn.benchmark"] is True


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"dtype": "fp8"}, "dtype"),
        ({"device": "tpu"}, "device"),
        ({"threads": -2}, "threads"),
        ({"jit": True}, "jit"),
    ],
)
def test_invalid_options(pt2: Path, options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidOptionError, match=field):
        TorchBackend().load(pt2, options)  # type: ignore[arg-type]


def test_unknown_compile_backend(pt2: Path) -> None:
    with pytest.raises(InvalidOptionError, match="compile_backend 'nope'") as info:
        TorchBackend().load(pt2, {"mode": "compile", "compile_backend": "nope"})
    assert "inductor" in info.value.hint


def test_torchscript_and_pickles_are_refused(tmp_path: Path) -> None:
    module = torch_mlp(LAYERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(module).save(str(tmp_path / "script.pt"))
    torch.save(module.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ModelLoadError, match="TorchScript") as info:
        TorchBackend().load(tmp_path / "script.pt", {})
    assert "torch.export.save" in info.value.hint
    with pytest.raises(ModelLoadError, match="torch pickle"):
        TorchBackend().load(tmp_path / "weights.pt", {})


def test_other_formats_are_a_usage_error() -> None:
    onnx = Path(__file__).parents[1] / "tippingpoint" / "models" / "builtin" / "mlp-tiny.onnx"
    with pytest.raises(ModelFileError, match=r"not mlp-tiny\.onnx") as info:
        TorchBackend().load(onnx, {})
    assert "torch.export.save" in info.value.hint


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError, match=r"bad\.pt2"):
        TorchBackend().load(bad, {})
    with pytest.raises(ModelFileError):
        TorchBackend().load(tmp_path / "absent.pt2", {})


def test_availability_reports_version() -> None:
    avail = TorchBackend().availability()
    assert avail.installed and avail.version == importlib.metadata.version("torch")
