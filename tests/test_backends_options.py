"""Typed option parsing and the pre-run option check of every local backend."""

import pytest

from tippingpoint.backends.base import Backend
from tippingpoint.backends.onnxruntime_cpu import GraphOptimization, OrtCpuOptions
from tippingpoint.backends.options import parse_options
from tippingpoint.backends.registry import get_backend
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.types import OptionValue

LOCAL = ["onnxruntime", "onnxruntime-cuda", "onnxruntime-tensorrt", "litert", "torch"]
"""Backends that load a model file on this machine."""

GOOD: dict[str, dict[str, OptionValue]] = {
    "onnxruntime": {"intra_op_threads": 2, "graph_optimization": "basic"},
    "onnxruntime-cuda": {"device_id": 0, "cudnn_conv_algo_search": "HEURISTIC"},
    "onnxruntime-tensorrt": {"trt_fp16": True},
    "litert": {"threads": 2, "delegate_options": "device=usb"},
    "torch": {"dtype": "fp16", "mode": "compile"},
}


def test_parse_options_returns_the_model_typed() -> None:
    opts = parse_options(OrtCpuOptions, {"graph_optimization": "basic"}, "onnxruntime")
    assert isinstance(opts, OrtCpuOptions)
    assert opts.graph_optimization is GraphOptimization.BASIC


def test_parse_options_names_the_option_and_the_valid_ones() -> None:
    with pytest.raises(InvalidOptionError, match="invalid onnxruntime option 'bogus'") as err:
        parse_options(OrtCpuOptions, {"bogus": 1}, "onnxruntime")
    assert err.value.hint.startswith("valid options: intra_op_threads, inter_op_threads")


@pytest.mark.parametrize("name", LOCAL)
def test_local_backends_declare_no_network_and_validate_without_loading(name: str) -> None:
    backend = get_backend(name)()
    assert isinstance(backend, Backend)
    assert backend.network is False
    backend.validate_options(GOOD[name])  # no model file, no runtime import needed
    backend.validate_options({})
    with pytest.raises(InvalidOptionError, match=f"invalid {name} option 'bogus'") as err:
        backend.validate_options({"bogus": 1})
    assert "valid options" in err.value.hint
