"""Post-training quantisation of exported fp32 files (``export`` extra).

* ONNX int8: static QDQ with ``onnxruntime.quantization`` (MinMax calibration, int8 activations,
  per-channel int8 weights); inputs and outputs stay float32, QuantizeLinear sits inside.
* LiteRT int8: full-integer static quantisation with ai-edge-quantizer (``static_wi8_ai8``,
  MinMax calibration); inputs and outputs become int8 with a scale and zero point. Integer
  inputs such as token ids stay integers.
* LiteRT fp16: ai-edge-quantizer's float-casting recipe: weights stored as fp16 and dequantised
  at load time (TFLite's "float16 quantisation"; GPU delegates compute in fp16).
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tippingpoint.models.exporters.litert import SIGNATURE, quiet
from tippingpoint.models.manifest import ModelFormat, Variant

QUANT_DESCRIPTIONS: dict[tuple[ModelFormat, Variant], str] = {
    (ModelFormat.ONNX, Variant.FP16): (
        "fp16 weights and compute, float32 inputs/outputs (ONNX Runtime's float16 converter, "
        "keep_io_types)"
    ),
    (ModelFormat.ONNX, Variant.INT8): (
        "static QDQ (onnxruntime.quantization.quantize_static): int8 activations, per-channel "
        "int8 weights, MinMax calibration; float32 inputs/outputs"
    ),
    (ModelFormat.TFLITE, Variant.FP16): (
        "fp16 weights dequantised at load (ai-edge-quantizer FLOAT_CASTING, weight-only); "
        "float32 compute and inputs/outputs"
    ),
    (ModelFormat.TFLITE, Variant.INT8): (
        "full-integer static quantisation (ai-edge-quantizer static_wi8_ai8, global MinMax "
        "calibration): int8 weights, activations, inputs and outputs (integer inputs such as "
        "token ids stay integers)"
    ),
}
"""One line per (format, variant) describing how that variant was made, for the manifest."""


class _Reader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over in-memory arrays."""

    def __init__(self, names: Sequence[str], arrays: Sequence[np.ndarray]) -> None:
        self._iter: Iterator[dict[str, np.ndarray]] = (
            {n: a[i : i + 1] for n, a in zip(names, arrays, strict=True)}
            for i in range(len(arrays[0]))
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next calibration sample, or None when exhausted."""
        return next(self._iter, None)


def onnx_int8_static(
    src: Path, dst: Path, input_names: Sequence[str], calibration: Sequence[np.ndarray]
) -> None:
    """Quantise an fp32 ONNX model to int8 QDQ, calibrated on ``calibration`` (one per input)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(src), str(prepped), skip_symbolic_shape=True)
            quantize_static(
                str(prepped),
                str(dst),
                _Reader(input_names, calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"CalibTensorRangeSymmetric": False},
            )


def _signature_inputs(path: Path) -> list[tuple[str, np.dtype]]:
    """(name, dtype) of the signature's inputs; litert-torch turns int64 inputs into int32."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner(SIGNATURE)
    details = runner.get_input_details()
    return [(name, np.dtype(d["dtype"])) for name, d in details.items()]


def _global_min_max(qt: Any, samples: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Calibrate on each sample alone and merge with true min/max over all samples.

    ai-edge-quantizer's default merges samples by a moving average of per-sample ranges, which
    clips the extremes seen in calibration; global min/max matches ONNX Runtime's MinMax so both
    formats are calibrated the same way.
    """
    from ai_edge_quantizer.utils.qsv_utils import min_max_update

    merged: dict[str, Any] = {}
    for sample in samples:
        for tensor, qsv in qt.calibrate({SIGNATURE: [sample]}, num_threads=1).items():
            merged[tensor] = min_max_update(merged.get(tensor, {}), qsv)
    return merged


def tflite_int8_static(src: Path, dst: Path, calibration: Sequence[np.ndarray]) -> None:
    """Full-integer int8 quantisation of an fp32 ``.tflite``, calibrated on ``calibration``."""
    from ai_edge_quantizer import quantizer, recipe

    inputs = _signature_inputs(src)
    samples = [
        {n: a[i : i + 1].astype(t) for (n, t), a in zip(inputs, calibration, strict=True)}
        for i in range(len(calibration[0]))
    ]
    qt = quantizer.Quantizer(str(src))
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    with quiet():
        result = _global_min_max(qt, samples)
        qt.quantize(result, enable_progress_bar=False, enable_progress_report=False).export_model(
            str(dst), overwrite=True
        )


def tflite_fp16_weights(src: Path, dst: Path) -> None:
    """fp16 variant of an fp32 ``.tflite``: weights cast to fp16, dequantised at load time."""
    from ai_edge_quantizer import qtyping, quantizer, recipe_manager

    manager = recipe_manager.RecipeManager()
    manager.add_weight_only_config(
        regex=".*",
        operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        num_bits=16,
        algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING,
    )
    qt = quantizer.Quantizer(str(src))
    qt.load_quantization_recipe(manager.get_quantization_recipe())
    with quiet():
        qt.quantize(enable_progress_bar=False, enable_progress_report=False).export_model(
            str(dst), overwrite=True
        )
