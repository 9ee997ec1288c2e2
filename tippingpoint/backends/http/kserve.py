"""KServe v2 / Open Inference Protocol tensors: JSON and the binary-tensor extension.

Pure encoding and decoding, shared by the HTTP client backend and the reference server; no I/O.
A binary request or response is a JSON header followed by raw little-endian tensor bytes; the
``Inference-Header-Content-Length`` HTTP header gives the JSON header's length.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tippingpoint.core.types import TensorSpec

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"

V2_TYPES: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "object": "BYTES",
}
"""numpy dtype name -> v2 datatype. BYTES tensors are object arrays of ``bytes`` (a ``str``
element is sent as its UTF-8); on the wire, JSON carries them as strings and binary data as
each element's 4-byte little-endian length followed by its bytes (the binary extension's
layout, which gRPC's raw contents share)."""
NUMPY_TYPES: dict[str, str] = {v: k for k, v in V2_TYPES.items()}


class CodecError(ValueError):
    """A message that does not follow the protocol; the text says what is wrong."""


@dataclass(frozen=True)
class NamedTensor:
    """A decoded tensor with its name."""

    name: str
    array: np.ndarray


@dataclass(frozen=True)
class InferRequest:
    """A decoded inference request: inputs, requested outputs and binary-output wishes."""

    id: str | None
    inputs: tuple[NamedTensor, ...]
    outputs: tuple[str, ...]
    binary_outputs: frozenset[str]
    binary_default: bool


@dataclass(frozen=True)
class Encoded:
    """A message body and the headers it needs."""

    body: bytes
    content_type: str
    header_length: int | None

    def headers(self) -> dict[str, str]:
        """HTTP headers announcing the body's type and JSON header length."""
        out = {"Content-Type": self.content_type}
        if self.header_length is not None:
            out[HEADER_LENGTH] = str(self.header_length)
        return out


def v2_datatype(dtype: np.dtype | str) -> str:
    """The v2 datatype of a numpy dtype; an unsupported one is a CodecError."""
    name = np.dtype(dtype).name
    if name not in V2_TYPES:
        raise CodecError(f"dtype {name} has no KServe v2 datatype")
    return V2_TYPES[name]


def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy dtype of a v2 datatype; an unsupported one is a CodecError."""
    if datatype not in NUMPY_TYPES:
        raise CodecError(
            f"unsupported datatype '{datatype}' (supported: {', '.join(sorted(NUMPY_TYPES))})"
        )
    return np.dtype(NUMPY_TYPES[datatype])


def _element(value: object) -> bytes:
    """One BYTES element as bytes (a ``str`` as UTF-8)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise CodecError(f"a BYTES element must be bytes or str, not {type(value).__name__}")


def bytes_blob(arr: np.ndarray) -> bytes:
    """A BYTES tensor's binary form: each element's uint32 little-endian length, then it."""
    parts = []
    for value in arr.ravel():
        item = _element(value)
        parts += [len(item).to_bytes(4, "little"), item]
    return b"".join(parts)


def parse_bytes_blob(blob: bytes | memoryview, count: int, name: str) -> np.ndarray:
    """The ``count`` elements of a BYTES tensor's binary form, as a flat object array; a blob
    that does not hold exactly ``count`` length-prefixed elements is a CodecError."""
    data = bytes(blob)
    out = np.empty(count, dtype=object)
    pos = 0
    for i in range(count):
        if pos + 4 > len(data):
            raise CodecError(f"tensor '{name}': BYTES data ends inside element {i} of {count}")
        size = int.from_bytes(data[pos : pos + 4], "little")
        if pos + 4 + size > len(data):
            raise CodecError(f"tensor '{name}': BYTES element {i} runs past the data")
        out[i] = data[pos + 4 : pos + 4 + size]
        pos += 4 + size
    if pos != len(data):
        raise CodecError(
            f"tensor '{name}': {len(data) - pos} bytes follow the {count} BYTES elements"
        )
    return out


def _le(arr: np.ndarray) -> bytes:
    if arr.dtype.kind == "O":
        return bytes_blob(arr)
    a = np.ascontiguousarray(arr)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a.tobytes()


def _tensor_entries(
    tensors: Sequence[NamedTensor], binary: Sequence[bool]
) -> tuple[list[dict[str, Any]], list[bytes]]:
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for t, as_binary in zip(tensors, binary, strict=True):
        entry: dict[str, Any] = {
            "name": t.name,
            "shape": list(t.array.shape),
            "datatype": v2_datatype(t.array.dtype),
        }
        if as_binary:
            blob = _le(t.array)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif t.array.dtype.kind == "O":  # BYTES as JSON strings
            entry["data"] = [_element(v).decode("utf-8", "replace") for v in t.array.ravel()]
        else:
            entry["data"] = t.array.ravel().tolist()
        entries.append(entry)
    return entries, blobs


def _assemble(doc: dict[str, Any], blobs: list[bytes]) -> Encoded:
    head = json.dumps(doc, separators=(",", ":")).encode()
    if not blobs:
        return Encoded(head, JSON_TYPE, None)
    return Encoded(b"".join([head, *blobs]), BINARY_TYPE, len(head))


def encode_request(
    inputs: Sequence[NamedTensor],
    *,
    binary_inputs: bool,
    binary_outputs: bool,
    request_id: str | None = None,
) -> Encoded:
    """A client's inference request."""
    entries, blobs = _tensor_entries(inputs, [binary_inputs] * len(inputs))
    doc: dict[str, Any] = {"inputs": entries}
    if request_id is not None:
        doc["id"] = request_id
    if binary_outputs:
        doc["parameters"] = {"binary_data_output": True}
    return _assemble(doc, blobs)


def encode_response(
    model_name: str,
    outputs: Sequence[NamedTensor],
    binary: Sequence[bool],
    request_id: str | None = None,
    model_version: str | None = None,
) -> Encoded:
    """A server's inference response."""
    entries, blobs = _tensor_entries(outputs, binary)
    doc: dict[str, Any] = {"model_name": model_name, "outputs": entries}
    if model_version is not None:
        doc["model_version"] = model_version
    if request_id is not None:
        doc["id"] = request_id
    return _assemble(doc, blobs)


def _split(body: bytes, header_length: int | None) -> tuple[dict[str, Any], memoryview]:
    if header_length is None:
        head, rest = body, memoryview(b"")
    else:
        if header_length < 0 or header_length > len(body):
            raise CodecError(
                f"{HEADER_LENGTH} is {header_length} but the body has {len(body)} bytes"
            )
        head, rest = body[:header_length], memoryview(body)[header_length:]
    try:
        doc = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(_json_problem(exc, header_length)) from None
    except RecursionError:
        raise CodecError("malformed JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        raise CodecError("the JSON body must be an object")
    return doc, rest


def _json_problem(exc: ValueError, header_length: int | None) -> str:
    """What is wrong with a JSON head: trailing bytes after a JSON document mean the
    announced header length does not fit the body."""
    if isinstance(exc, json.JSONDecodeError) and exc.msg == "Extra data":
        if header_length is None:
            return (
                f"bytes follow the JSON document at offset {exc.pos}: binary tensors need the "
                f"{HEADER_LENGTH} header"
            )
        return (
            f"{HEADER_LENGTH} {header_length} does not end at the JSON header's end (offset "
            f"{exc.pos}): the header length and binary_data_size values do not match the body"
        )
    return f"malformed JSON: {exc}"


def _shape(entry: Mapping[str, Any], name: str) -> tuple[int, ...]:
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise CodecError(f"tensor '{name}': 'shape' must be a list of non-negative integers")
    return tuple(shape)


def _decode_tensors(entries: object, rest: memoryview, what: str) -> list[NamedTensor]:
    if not isinstance(entries, list) or not entries:
        raise CodecError(f"'{what}' must be a non-empty list of tensors")
    out: list[NamedTensor] = []
    offset = 0
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise CodecError(f"each entry of '{what}' must be an object with a string 'name'")
        name = entry["name"]
        shape = _shape(entry, name)
        datatype = entry.get("datatype")
        if not isinstance(datatype, str):
            raise CodecError(f"tensor '{name}': 'datatype' must be a string")
        dtype = numpy_dtype(datatype)
        count = int(np.prod(shape, dtype=np.int64))
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise CodecError(f"tensor '{name}': 'parameters' must be an object")
        size = params.get("binary_data_size")
        if size is not None and dtype.kind == "O":  # BYTES: length-prefixed elements
            if not isinstance(size, int) or size < 0 or offset + size > len(rest):
                raise CodecError(f"tensor '{name}': binary_data_size does not fit the body")
            arr = parse_bytes_blob(rest[offset : offset + size], count, name).reshape(shape)
            offset += size
        elif dtype.kind == "O":
            data = entry.get("data")
            flat_values = _flatten(data) if isinstance(data, list) else None
            if flat_values is None or not all(isinstance(v, str) for v in flat_values):
                raise CodecError(
                    f"tensor '{name}': BYTES 'data' must be a (nested) list of strings"
                )
            if len(flat_values) != count:
                raise CodecError(
                    f"tensor '{name}': 'data' has {len(flat_values)} values, shape {list(shape)} "
                    f"needs {count}"
                )
            values = np.empty(count, dtype=object)
            values[:] = [v.encode() for v in flat_values]
            arr = values.reshape(shape)
        elif size is not None:
            if not isinstance(size, int) or size < 0:
                raise CodecError(f"tensor '{name}': binary_data_size must be an integer >= 0")
            if size != count * dtype.itemsize:
                raise CodecError(
                    f"tensor '{name}': binary_data_size {size} does not match shape "
                    f"{list(shape)} of {datatype} ({count * dtype.itemsize} bytes)"
                )
            if offset + size > len(rest):
                raise CodecError(f"tensor '{name}': binary data is shorter than announced")
            arr = np.frombuffer(rest[offset : offset + size], dtype=dtype.newbyteorder("<"))
            offset += size
            arr = arr.astype(dtype, copy=False).reshape(shape)
        else:
            if "data" not in entry:
                raise CodecError(f"tensor '{name}': neither 'data' nor binary_data_size given")
            try:
                flat = np.asarray(entry["data"], dtype=dtype)
            except (TypeError, ValueError, OverflowError):
                raise CodecError(
                    f"tensor '{name}': 'data' is not a (nested) list of {datatype} values"
                ) from None
            if flat.size != count:
                raise CodecError(
                    f"tensor '{name}': 'data' has {flat.size} values, shape {list(shape)} "
                    f"needs {count}"
                )
            arr = flat.reshape(shape)
        out.append(NamedTensor(name, arr))
    if offset != len(rest):
        raise CodecError(f"{len(rest) - offset} bytes of binary data were not claimed by a tensor")
    return out


def _flatten(data: list[Any]) -> list[Any] | None:
    """The leaves of a nested list, in order (None when nested too deeply)."""
    out: list[Any] = []
    stack: list[tuple[list[Any], int]] = [(data, 0)]
    while stack:
        items, i = stack.pop()
        while i < len(items):
            v = items[i]
            i += 1
            if isinstance(v, list):
                if len(stack) > 64:
                    return None
                stack.append((items, i))
                items, i = v, 0
            else:
                out.append(v)
    return out


def decode_request(body: bytes, header_length: int | None) -> InferRequest:
    """A server's view of an inference request; any protocol violation is a CodecError."""
    doc, rest = _split(body, header_length)
    inputs = _decode_tensors(doc.get("inputs"), rest, "inputs")
    params = doc.get("parameters") or {}
    binary_default = isinstance(params, dict) and params.get("binary_data_output") is True
    names: list[str] = []
    binary: set[str] = set()
    requested = doc.get("outputs") or []
    if not isinstance(requested, list):
        raise CodecError("'outputs' must be a list")
    for entry in requested:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise CodecError("each entry of 'outputs' must be an object with a string 'name'")
        names.append(entry["name"])
        p = entry.get("parameters") or {}
        if isinstance(p, dict) and p.get("binary_data") is True:
            binary.add(entry["name"])
    rid = doc.get("id")
    return InferRequest(
        id=rid if isinstance(rid, str) else None,
        inputs=tuple(inputs),
        outputs=tuple(names),
        binary_outputs=frozenset(binary),
        binary_default=binary_default,
    )


def decode_response(body: bytes, header_length: int | None) -> list[NamedTensor]:
    """A client's view of an inference response's outputs."""
    doc, rest = _split(body, header_length)
    if "error" in doc and "outputs" not in doc:
        raise CodecError(f"server error: {str(doc['error'])[:200]}")
    return _decode_tensors(doc.get("outputs"), rest, "outputs")


def metadata_document(
    name: str,
    versions: Sequence[str],
    platform: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
) -> dict[str, Any]:
    """The model-metadata response; dynamic dimensions are -1."""

    def spec(s: TensorSpec) -> dict[str, Any]:
        return {
            "name": s.name,
            "datatype": v2_datatype(s.dtype),
            "shape": [-1 if d is None else d for d in s.shape],
        }

    return {
        "name": name,
        "versions": list(versions),
        "platform": platform,
        "inputs": [spec(s) for s in inputs],
        "outputs": [spec(s) for s in outputs],
    }


def parse_metadata(body: bytes) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Input and output specs from a model-metadata response."""
    doc, _ = _split(body, None)

    def specs(key: str) -> tuple[TensorSpec, ...]:
        entries = doc.get(key)
        if not isinstance(entries, list):
            raise CodecError(f"model metadata has no '{key}' list")
        out = []
        for e in entries:
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                raise CodecError(f"model metadata '{key}' entries need a 'name'")
            shape = e.get("shape")
            if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
                raise CodecError(f"model metadata tensor '{e['name']}' has no integer 'shape'")
            dtype = numpy_dtype(str(e.get("datatype"))).name
            out.append(
                TensorSpec(
                    name=e["name"], shape=tuple(None if d < 0 else d for d in shape), dtype=dtype
                )
            )
        return tuple(out)

    return specs("inputs"), specs("outputs")


def model_info(body: bytes) -> tuple[str | None, str | None]:
    """The first of ``versions`` and the ``platform`` of a model-metadata response (None
    where the document states none)."""
    try:
        doc, _ = _split(body, None)
    except CodecError:
        return None, None
    versions = doc.get("versions")
    version = versions[0] if isinstance(versions, list) and versions else None
    platform = doc.get("platform")
    return (
        str(version) if version is not None else None,
        platform if isinstance(platform, str) and platform else None,
    )
