"""numpy arrays to and from the KServe v2 gRPC messages: pure conversion, no I/O; shared by
the gRPC client session and the reference server's gRPC port.

Requests and responses carry tensors as ``raw_*_contents`` (little-endian bytes, one entry per
tensor, as Triton prefers and KServe accepts); typed ``contents`` are decoded too, since a
server may answer with them (MLServer does unless asked for raw outputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tippingpoint.backends.grpc.proto import M
from tippingpoint.backends.http.kserve import (
    CodecError,
    NamedTensor,
    bytes_blob,
    numpy_dtype,
    parse_bytes_blob,
    v2_datatype,
)
from tippingpoint.core.types import TensorSpec

CONTENTS_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""The typed ``InferTensorContents`` field of each datatype (FP16 travels raw only)."""


def _le(arr: np.ndarray) -> bytes:
    if arr.dtype.kind == "O":  # BYTES: length-prefixed elements, as in the binary extension
        return bytes_blob(arr)
    a = np.ascontiguousarray(arr)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a.tobytes()


def _add_tensor(entries: Any, raw: Any, t: NamedTensor) -> None:
    entry = entries.add(name=t.name, datatype=v2_datatype(t.array.dtype))
    entry.shape.extend(int(d) for d in t.array.shape)
    raw.append(_le(t.array))


def encode_request(
    model: str,
    version: str | None,
    inputs: Sequence[NamedTensor],
    request_id: str | None = None,
) -> bytes:
    """A serialised ``ModelInferRequest`` with raw tensor contents (encoded once, sent many
    times)."""
    req = M.ModelInferRequest(model_name=model, model_version=version or "")
    if request_id:
        req.id = request_id
    for t in inputs:
        _add_tensor(req.inputs, req.raw_input_contents, t)
    data: bytes = req.SerializeToString()
    return data


def _tensor(entry: Any, raw: bytes | None) -> NamedTensor:
    """One tensor from its entry and, when given, its raw little-endian bytes."""
    name = entry.name
    shape = tuple(int(d) for d in entry.shape)
    if any(d < 0 for d in shape):
        raise CodecError(f"tensor '{name}': negative dimension in shape {list(shape)}")
    dtype = numpy_dtype(entry.datatype)
    count = int(np.prod(shape, dtype=np.int64))
    if raw is not None and dtype.kind == "O":
        return NamedTensor(name, parse_bytes_blob(raw, count, name).reshape(shape))
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise CodecError(
                f"tensor '{name}': {len(raw)} raw bytes, shape {list(shape)} of "
                f"{entry.datatype} needs {count * dtype.itemsize}"
            )
        arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False)
        return NamedTensor(name, arr.reshape(shape))
    field = CONTENTS_FIELD.get(entry.datatype)
    if field is None or not entry.HasField("contents"):
        raise CodecError(f"tensor '{name}': no contents and no raw contents")
    values = getattr(entry.contents, field)
    if len(values) != count:
        raise CodecError(
            f"tensor '{name}': {len(values)} values, shape {list(shape)} needs {count}"
        )
    if dtype.kind == "O":
        flat = np.empty(count, dtype=object)
        flat[:] = list(values)
        return NamedTensor(name, flat.reshape(shape))
    return NamedTensor(name, np.asarray(values, dtype=dtype).reshape(shape))


def _tensors(entries: Any, raw: Sequence[bytes], what: str) -> list[NamedTensor]:
    if raw and len(raw) != len(entries):
        raise CodecError(f"{len(raw)} raw contents for {len(entries)} {what}")
    return [_tensor(e, raw[i] if raw else None) for i, e in enumerate(entries)]


def parse(cls: Any, data: bytes) -> Any:
    """``cls.FromString(data)``, a malformed message being a CodecError."""
    from google.protobuf.message import DecodeError

    try:
        return cls.FromString(data)
    except (DecodeError, RecursionError) as exc:
        raise CodecError(f"malformed {cls.DESCRIPTOR.name}: {exc}") from None


def decode_response(data: bytes) -> list[NamedTensor]:
    """The outputs of a serialised ``ModelInferResponse``."""
    resp = parse(M.ModelInferResponse, data)
    if not resp.outputs:
        raise CodecError("the response has no outputs")
    return _tensors(resp.outputs, list(resp.raw_output_contents), "outputs")


def decode_request(req: Any) -> list[NamedTensor]:
    """The inputs of a ``ModelInferRequest`` (the server's view)."""
    if not req.inputs:
        raise CodecError("'inputs' must be a non-empty list of tensors")
    return _tensors(req.inputs, list(req.raw_input_contents), "inputs")


def encode_response(
    model: str, version: str | None, outputs: Sequence[NamedTensor], request_id: str = ""
) -> Any:
    """A ``ModelInferResponse`` with raw output contents."""
    resp = M.ModelInferResponse(model_name=model, model_version=version or "", id=request_id)
    for t in outputs:
        _add_tensor(resp.outputs, resp.raw_output_contents, t)
    return resp


def metadata_specs(resp: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Input and output specs of a ``ModelMetadataResponse`` (-1 dimensions are dynamic)."""

    def specs(entries: Any) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(
                name=e.name,
                shape=tuple(None if d < 0 else int(d) for d in e.shape),
                dtype=numpy_dtype(e.datatype).name,
            )
            for e in entries
        )

    return specs(resp.inputs), specs(resp.outputs)


def metadata_response(
    name: str, versions: Sequence[str], platform: str, inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
) -> Any:  # fmt: skip
    """A ``ModelMetadataResponse`` for the server."""
    resp = M.ModelMetadataResponse(name=name, versions=list(versions), platform=platform)
    for entries, specs in ((resp.inputs, inputs), (resp.outputs, outputs)):
        for s in specs:
            entries.add(
                name=s.name,
                datatype=v2_datatype(s.dtype),
                shape=[-1 if d is None else d for d in s.shape],
            )
    return resp
