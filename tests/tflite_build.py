"""Write small ``.tflite`` MLPs with the LiteRT flatbuffer schema (no converter, no TensorFlow).

Float models use FULLY_CONNECTED with float32 weights; quantised models are fully integer
(int8 or uint8 activations, weights with zero point 0 for int8, int32 biases), with activation
ranges calibrated on seeded N(0, 1) inputs, as a post-training quantiser does.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Dense:
    """One fully connected layer: y = x @ weight.T + bias, optionally followed by ReLU."""

    weight: np.ndarray  # [out, in], as torch.nn.Linear stores it
    bias: np.ndarray  # [out]
    relu: bool


def random_mlp(sizes: Sequence[int], seed: int) -> list[Dense]:
    """Seeded He-initialised layers for ``sizes`` = (in, hidden..., out); ReLU between layers."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32)
        b = (rng.standard_normal(n_out) * 0.1).astype(np.float32)
        layers.append(Dense(w, b, relu=i < len(sizes) - 2))
    return layers


def forward(layers: Sequence[Dense], x: np.ndarray) -> np.ndarray:
    """The float reference computation."""
    h = x.astype(np.float32)
    for layer in layers:
        h = h @ layer.weight.T + layer.bias
        if layer.relu:
            h = np.maximum(h, 0.0)
    return h


def _qparams(lo: float, hi: float, dtype: np.dtype) -> tuple[float, int]:
    info = np.iinfo(dtype)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (int(info.max) - int(info.min)) or 1.0
    zero_point = int(np.clip(round(info.min - lo / scale), info.min, info.max))
    return float(scale), zero_point


def write_mlp(
    path: Path,
    layers: Sequence[Dense],
    *,
    io_dtype: str = "float32",
    batch: int | None = 1,
) -> Path:
    """Write ``layers`` as a .tflite file; ``batch=None`` makes the batch dimension dynamic."""
    from ai_edge_litert import schema_py_generated as s

    quantised = io_dtype != "float32"
    act_dtype = np.dtype(io_dtype)
    tensor_type = {"float32": s.TensorType.FLOAT32, "int8": s.TensorType.INT8}.get(
        io_dtype, s.TensorType.UINT8
    )

    buffers: list[s.BufferT] = [s.BufferT()]  # buffer 0: the empty sentinel
    tensors: list[s.TensorT] = []

    def add_buffer(arr: np.ndarray) -> int:
        buf = s.BufferT()
        buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
        buffers.append(buf)
        return len(buffers) - 1

    def add_tensor(
        name: str,
        shape: Sequence[int],
        ttype: int,
        data: np.ndarray | None = None,
        quant: tuple[float, int] | None = None,
        signature: Sequence[int] | None = None,
    ) -> int:
        t = s.TensorT()
        t.name = name
        t.shape = list(shape)
        if signature is not None:
            t.shapeSignature = list(signature)
        t.type = ttype
        t.buffer = add_buffer(data) if data is not None else 0
        if quant is not None:
            q = s.QuantizationParametersT()
            q.scale = [quant[0]]
            q.zeroPoint = [quant[1]]
            t.quantization = q
        tensors.append(t)
        return len(tensors) - 1

    # activation ranges from seeded calibration data
    calib = np.random.default_rng(0).standard_normal((256, layers[0].weight.shape[1]))
    ranges = [(float(calib.min()), float(calib.max()))]
    h = calib.astype(np.float32)
    for layer in layers:
        h = forward([layer], h)
        ranges.append((float(h.min()), float(h.max())))

    n_in = layers[0].weight.shape[1]
    dyn = [-1 if batch is None else batch]
    act_quant = [_qparams(lo, hi, act_dtype) for lo, hi in ranges] if quantised else None
    x = add_tensor(
        "x",
        [batch or 1, n_in],
        tensor_type,
        quant=act_quant[0] if act_quant else None,
        signature=[*dyn, n_in] if batch is None else None,
    )
    ops: list[s.OperatorT] = []
    current = x
    for i, layer in enumerate(layers):
        n_out = layer.weight.shape[0]
        last = i == len(layers) - 1
        if quantised:
            in_scale = act_quant[i][0]
            if act_dtype == np.int8:
                w_scale = float(np.abs(layer.weight).max() / 127.0) or 1.0
                w_q = np.clip(np.round(layer.weight / w_scale), -127, 127).astype(np.int8)
                w_quant = (w_scale, 0)
            else:
                w_scale, w_zp = _qparams(
                    float(layer.weight.min()), float(layer.weight.max()), np.dtype(np.uint8)
                )
                w_q = np.clip(np.round(layer.weight / w_scale) + w_zp, 0, 255).astype(np.uint8)
                w_quant = (w_scale, w_zp)
            b_scale = in_scale * w_scale
            b_q = np.round(layer.bias / b_scale).astype(np.int32)
            w = add_tensor(f"w{i}", w_q.shape, tensor_type, w_q, w_quant)
            b = add_tensor(f"b{i}", b_q.shape, s.TensorType.INT32, b_q, (b_scale, 0))
            out_quant: tuple[float, int] | None = act_quant[i + 1]
        else:
            w = add_tensor(f"w{i}", layer.weight.shape, tensor_type, layer.weight)
            b = add_tensor(f"b{i}", layer.bias.shape, tensor_type, layer.bias)
            out_quant = None
        y = add_tensor(
            "logits" if last else f"h{i}",
            [batch or 1, n_out],
            tensor_type,
            quant=out_quant,
            signature=[*dyn, n_out] if batch is None else None,
        )
        op = s.OperatorT()
        op.opcodeIndex = 0
        op.inputs = [current, w, b]
        op.outputs = [y]
        op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
        fc = s.FullyConnectedOptionsT()
        fc.fusedActivationFunction = (
            s.ActivationFunctionType.RELU if layer.relu else s.ActivationFunctionType.NONE
        )
        op.builtinOptions = fc
        ops.append(op)
        current = y

    code = s.OperatorCodeT()
    code.builtinCode = s.BuiltinOperator.FULLY_CONNECTED
    code.deprecatedBuiltinCode = s.BuiltinOperator.FULLY_CONNECTED
    code.version = 4 if quantised else 1
    graph = s.SubGraphT()
    graph.tensors = tensors
    graph.inputs = [x]
    graph.outputs = [current]
    graph.operators = ops
    graph.name = "main"
    model = s.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [graph]
    model.buffers = buffers
    model.description = "tippingpoint test MLP"

    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(builder.Output()))
    return path
