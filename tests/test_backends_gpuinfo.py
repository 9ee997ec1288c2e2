"""GPU facts for the fingerprint: NVML (a stand-in where no GPU driver exists) and torch flags."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tippingpoint.backends.gpuinfo import gpu_info, torch_cuda_settings


class FakeNvmlError(Exception):
    """Stands in for pynvml.NVMLError."""


@dataclass
class _Memory:
    total: int


class FakeNvml:
    """The subset of the pynvml API gpu_info uses, with two H100s (bytes, as old bindings)."""

    NVMLError = FakeNvmlError

    def __init__(self, fail_init: bool = False, has_cuda_call: bool = True) -> None:
        self.fail_init = fail_init
        self.has_cuda_call = has_cuda_call
        self.shutdowns = 0

    def nvmlInit(self) -> None:  # pynvml spells its functions in camelCase
        if self.fail_init:
            raise FakeNvmlError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.15"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        if not self.has_cuda_call:
            raise FakeNvmlError("Function Not Found")
        return 12040

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return 100 + index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return f"NVIDIA H100 80GB HBM3 #{handle - 100}"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> _Memory:
        return _Memory(total=85_520_809_984)


def test_gpus_from_nvml() -> None:
    nvml = FakeNvml()
    gpus = gpu_info(nvml)
    assert [g.index for g in gpus] == [0, 1]
    assert gpus[1].name == "NVIDIA H100 80GB HBM3 #1"
    assert {g.driver for g in gpus} == {"550.54.15"}
    assert {g.cuda for g in gpus} == {"12.4"}
    assert gpus[0].memory_total_bytes == 85_520_809_984
    assert nvml.shutdowns == 1


def test_no_driver_means_no_gpus() -> None:
    assert gpu_info(FakeNvml(fail_init=True)) == ()


def test_old_driver_without_cuda_version() -> None:
    gpus = gpu_info(FakeNvml(has_cuda_call=False))
    assert gpus and all(g.cuda is None for g in gpus)


def test_real_nvml_on_this_machine() -> None:
    if importlib.util.find_spec("pynvml") is None:
        pytest.skip("needs nvidia-ml-py")
    import pynvml

    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        count = 0
    assert len(gpu_info()) == count


def test_gpu_info_does_not_import_torch() -> None:
    code = (
        "import sys; from tippingpoint.backends.gpuinfo import gpu_info; gpu_info();"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_torch_settings_when_torch_is_loaded() -> None:
    torch = pytest.importorskip("torch")
    saved = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = True
        settings = torch_cuda_settings(torch)
        assert settings["cudnn.benchmark"] is True
        assert settings["cuda.matmul.allow_tf32"] == torch.backends.cuda.matmul.allow_tf32
        assert settings["torch.version.cuda"] == torch.version.cuda
        gpus = gpu_info(FakeNvml())
        assert gpus[0].settings["cudnn.benchmark"] is True
        assert "cudnn.version" not in gpus[0].settings
    finally:
        torch.backends.cudnn.benchmark = saved


def test_cudnn_version_without_torch_comes_from_the_wheel() -> None:
    code = (
        "import sys; from tests.test_backends_gpuinfo import FakeNvml;"
        "from tippingpoint.backends.gpuinfo import gpu_info, cudnn_wheel_version;"
        "g = gpu_info(FakeNvml());"
        "print(g[0].cudnn == cudnn_wheel_version(), g[0].settings == {}, 'torch' in sys.modules)"
    )
    root = Path(__file__).parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.split() == ["True", "True", "False"]
