"""GPU facts for the fingerprint: NVML (a stand-in where no GPU driver exists) and torch flags."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tippingpoint.backends.gpuinfo import gpu_info, torch_cuda_settings

from .fakes.pynvml import FakePynvml


def test_gpus_from_nvml() -> None:
    nvml = FakePynvml()
    gpus = gpu_info(nvml)
    assert [g.index for g in gpus] == [0, 1]
    assert gpus[1].name == "NVIDIA H100 80GB HBM3 #1"
    assert {g.driver for g in gpus} == {"550.54.15"}
    assert {g.cuda for g in gpus} == {"12.4"}
    assert gpus[0].memory_total_bytes == 85_520_809_984
    assert nvml.shutdowns == 1


def test_no_driver_means_no_gpus() -> None:
    assert gpu_info(FakePynvml(fail_init=True)) == ()


def test_old_driver_without_cuda_version() -> None:
    gpus = gpu_info(FakePynvml(has_cuda_call=False))
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
    torch = pytest.importorskip("torch", reason="torch is the torch extra")
    saved = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = True
        settings = torch_cuda_settings(torch)
        assert settings["cudnn.benchmark"] is True
        assert settings["cuda.matmul.allow_tf32"] == torch.backends.cuda.matmul.allow_tf32
        assert settings["torch.version.cuda"] == torch.version.cuda
        gpus = gpu_info(FakePynvml())
        assert gpus[0].settings["cudnn.benchmark"] is True
        assert "cudnn.version" not in gpus[0].settings
    finally:
        torch.backends.cudnn.benchmark = saved


def test_cudnn_version_without_torch_comes_from_the_wheel() -> None:
    code = (
        "import sys; from tests.fakes.pynvml import FakePynvml;"
        "from tippingpoint.backends.gpuinfo import gpu_info, cudnn_wheel_version;"
        "g = gpu_info(FakePynvml());"
        "print(g[0].cudnn == cudnn_wheel_version(), g[0].settings == {}, 'torch' in sys.modules)"
    )
    root = Path(__file__).parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.split() == ["True", "True", "False"]
