"""Wire protocols of the HTTP backend: KServe v2 (JSON or binary tensors), TF Serving REST
``:predict``, and a generic JSON template for any other endpoint.

Each protocol says where to ask for readiness and metadata, where to send an inference, how to
encode a batch (once, at bind time, outside the timed loop) and how to decode a response.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import numpy as np

from tippingpoint.backends.http import kserve
from tippingpoint.backends.http.kserve import CodecError, Encoded, NamedTensor
from tippingpoint.core.errors import OptionValueError
from tippingpoint.core.types import TensorSpec


class WireProtocol(str, Enum):
    """The request/response format an endpoint speaks."""

    KSERVE_V2 = "kserve-v2"
    TFSERVING = "tfserving"
    TEMPLATE = "template"


class HttpMethod(str, Enum):
    """HTTP method of an inference request."""

    POST = "POST"
    GET = "GET"


class Codec(Protocol):
    """What the client needs from a protocol."""

    @property
    def protocol(self) -> WireProtocol:
        """The wire protocol, as the report records it."""
        ...

    @property
    def method(self) -> HttpMethod:
        """The HTTP method of an inference request."""
        ...

    def ready_path(self) -> str | None:
        """Path of the readiness check, or None when the protocol has none."""
        ...

    def metadata_path(self) -> str | None:
        """Path of the model metadata, or None when the protocol has none."""
        ...

    def parse_metadata(self, body: bytes) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Input and output specs from the metadata response."""
        ...

    def model_info(self, body: bytes) -> tuple[str | None, str | None]:
        """The model's version and platform as the metadata response states them."""
        ...

    def infer_path(self) -> str:
        """Path inference requests go to."""
        ...

    def encode(self, inputs: Sequence[TensorSpec], feeds: Sequence[np.ndarray]) -> Encoded:
        """The request body of one batch."""
        ...

    def decode(
        self, body: bytes, headers: Mapping[str, str], outputs: Sequence[TensorSpec]
    ) -> list[np.ndarray]:
        """Output arrays of one response, in output-spec order where specs are known."""
        ...


def _version_part(version: str | None) -> str:
    return f"/versions/{version}" if version else ""


@dataclass(frozen=True)
class KServeV2Codec:
    """The Open Inference Protocol over HTTP/REST, with JSON or binary tensors."""

    model: str
    version: str | None = None
    binary: bool = True
    protocol: WireProtocol = WireProtocol.KSERVE_V2
    method: HttpMethod = HttpMethod.POST

    def ready_path(self) -> str | None:
        """The server readiness endpoint."""
        return "/v2/health/ready"

    def metadata_path(self) -> str | None:
        """The model metadata endpoint."""
        return f"/v2/models/{self.model}{_version_part(self.version)}"

    def parse_metadata(self, body: bytes) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Specs from the v2 metadata document."""
        return kserve.parse_metadata(body)

    def model_info(self, body: bytes) -> tuple[str | None, str | None]:
        """The first of the metadata's ``versions`` and its ``platform``."""
        return kserve.model_info(body)

    def infer_path(self) -> str:
        """The model's infer endpoint."""
        return f"/v2/models/{self.model}{_version_part(self.version)}/infer"

    def encode(self, inputs: Sequence[TensorSpec], feeds: Sequence[np.ndarray]) -> Encoded:
        """A v2 request; binary tensors both ways when ``binary``."""
        tensors = [NamedTensor(s.name, a) for s, a in zip(inputs, feeds, strict=True)]
        return kserve.encode_request(tensors, binary_inputs=self.binary, binary_outputs=self.binary)

    def decode(
        self, body: bytes, headers: Mapping[str, str], outputs: Sequence[TensorSpec]
    ) -> list[np.ndarray]:
        """Outputs in the order of ``outputs`` when given, else as the server sent them."""
        raw = headers.get(kserve.HEADER_LENGTH)
        length: int | None = None
        if raw is not None:
            try:
                length = int(raw)
            except ValueError:
                raise CodecError(f"{kserve.HEADER_LENGTH} '{raw[:40]}' is not an integer") from None
        tensors = kserve.decode_response(body, length)
        by_name = {t.name: t.array for t in tensors}
        if outputs and all(s.name in by_name for s in outputs):
            return [by_name[s.name] for s in outputs]
        return [t.array for t in tensors]


TF_TYPES = {
    "DT_FLOAT": "float32",
    "DT_DOUBLE": "float64",
    "DT_HALF": "float16",
    "DT_INT8": "int8",
    "DT_UINT8": "uint8",
    "DT_INT16": "int16",
    "DT_INT32": "int32",
    "DT_INT64": "int64",
    "DT_BOOL": "bool",
}


def _tf_specs(entries: object) -> tuple[TensorSpec, ...]:
    if not isinstance(entries, dict):
        raise CodecError("signature inputs/outputs must be objects")
    out = []
    for key, e in entries.items():
        if not isinstance(e, dict):
            raise CodecError(f"signature tensor '{key}' must be an object")
        dtype = TF_TYPES.get(str(e.get("dtype")))
        if dtype is None:
            raise CodecError(f"signature tensor '{key}' has unsupported dtype {e.get('dtype')}")
        dims = (e.get("tensor_shape") or {}).get("dim") or []
        shape = tuple(None if int(d.get("size", -1)) < 0 else int(d["size"]) for d in dims)
        out.append(TensorSpec(name=key, shape=shape, dtype=dtype))
    return tuple(out)


@dataclass(frozen=True)
class TfServingCodec:
    """TensorFlow Serving's REST API, columnar ``inputs`` format."""

    model: str
    version: str | None = None
    signature: str = "serving_default"
    protocol: WireProtocol = WireProtocol.TFSERVING
    method: HttpMethod = HttpMethod.POST

    def _base(self) -> str:
        return f"/v1/models/{self.model}" + (f"/versions/{self.version}" if self.version else "")

    def ready_path(self) -> str | None:
        """The model status endpoint."""
        return self._base()

    def metadata_path(self) -> str | None:
        """The model metadata endpoint (signature definitions)."""
        return self._base() + "/metadata"

    def parse_metadata(self, body: bytes) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Specs from the serving signature."""
        try:
            doc = json.loads(body)
            sig = doc["metadata"]["signature_def"]["signature_def"][self.signature]
        except (ValueError, KeyError, TypeError):
            raise CodecError(f"TF Serving metadata has no signature '{self.signature}'") from None
        return _tf_specs(sig.get("inputs")), _tf_specs(sig.get("outputs"))

    def model_info(self, body: bytes) -> tuple[str | None, str | None]:
        """``model_spec.version`` of the metadata; the platform is TensorFlow Serving's."""
        try:
            version = json.loads(body)["model_spec"]["version"]
        except (ValueError, KeyError, TypeError, RecursionError):
            version = None
        return (str(version) if version is not None else None), "tensorflow-serving"

    def infer_path(self) -> str:
        """The ``:predict`` endpoint."""
        return self._base() + ":predict"

    def encode(self, inputs: Sequence[TensorSpec], feeds: Sequence[np.ndarray]) -> Encoded:
        """``{"signature_name": ..., "inputs": {name: nested list}}``."""
        doc = {
            "signature_name": self.signature,
            "inputs": {s.name: json_values(a) for s, a in zip(inputs, feeds, strict=True)},
        }
        return Encoded(json.dumps(doc, separators=(",", ":")).encode(), kserve.JSON_TYPE, None)

    def decode(
        self, body: bytes, headers: Mapping[str, str], outputs: Sequence[TensorSpec]
    ) -> list[np.ndarray]:
        """``outputs`` (columnar) or ``predictions`` (row) of the response."""
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CodecError(f"malformed JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise CodecError("the response must be a JSON object")
        value = doc.get("outputs", doc.get("predictions"))
        if value is None:
            raise CodecError("response has neither 'outputs' nor 'predictions'")
        if isinstance(value, dict):
            names = [s.name for s in outputs if s.name in value] or list(value)
            return [_array(value[n], _dtype_of(outputs, n)) for n in names]
        return [_array(value, outputs[0].dtype if outputs else None)]


def _dtype_of(specs: Sequence[TensorSpec], name: str) -> str | None:
    return next((s.dtype for s in specs if s.name == name), None)


def _array(value: Any, dtype: str | None) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise CodecError("response tensor is not a rectangular list of numbers") from None


_PLACEHOLDER = re.compile(r'"\{\{([A-Za-z0-9_.:/-]+)\}\}"')


@dataclass(frozen=True)
class TemplateCodec:
    """Any JSON endpoint: a body template and a path to the outputs in the response.

    In the template, the JSON string ``"{{name}}"`` stands for the nested list of input
    ``name`` (or ``"{{0}}"`` for the first input). ``response_path`` is a dotted path
    (``predictions`` or ``outputs.0.data``); empty means the response is not decoded.
    """

    path: str
    template: str = ""
    response_path: str = ""
    method: HttpMethod = HttpMethod.POST
    content_type: str = kserve.JSON_TYPE
    protocol: WireProtocol = WireProtocol.TEMPLATE

    def ready_path(self) -> str | None:
        """None: a generic endpoint has no known readiness check."""
        return None

    def metadata_path(self) -> str | None:
        """None: input specs come from the user."""
        return None

    def parse_metadata(self, body: bytes) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Never called: the template protocol has no metadata."""
        raise CodecError("the template protocol has no metadata endpoint")

    def model_info(self, body: bytes) -> tuple[str | None, str | None]:
        """Nothing: a generic endpoint states no version or platform."""
        return None, None

    def infer_path(self) -> str:
        """The endpoint path given by the user."""
        return self.path

    def encode(self, inputs: Sequence[TensorSpec], feeds: Sequence[np.ndarray]) -> Encoded:
        """The template with each placeholder replaced by its input's values."""
        if not self.template:
            return Encoded(b"", self.content_type, None)
        values = {s.name: a for s, a in zip(inputs, feeds, strict=True)}
        values.update({str(i): a for i, a in enumerate(feeds)})

        def sub(m: re.Match[str]) -> str:
            key = m.group(1)
            if key not in values:
                raise CodecError(
                    f"template placeholder '{{{{{key}}}}}' names no input "
                    f"(inputs: {', '.join(s.name for s in inputs) or 'none'})"
                )
            return json.dumps(json_values(values[key]), separators=(",", ":"))

        text = _PLACEHOLDER.sub(sub, self.template)
        try:
            json.loads(text)
        except ValueError as exc:
            raise CodecError(f"the request template is not valid JSON: {exc}") from None
        return Encoded(text.encode(), self.content_type, None)

    def decode(
        self, body: bytes, headers: Mapping[str, str], outputs: Sequence[TensorSpec]
    ) -> list[np.ndarray]:
        """The array at ``response_path``; nothing when no path was given (a non-empty body
        must still be JSON)."""
        if not self.response_path and not body:
            return []
        try:
            node: Any = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CodecError(f"malformed JSON: {exc}") from None
        if not self.response_path:
            return []
        for part in self.response_path.split("."):
            try:
                node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise CodecError(f"response has nothing at '{self.response_path}'") from None
        return [_array(node, outputs[0].dtype if outputs else None)]


STRING_TYPES = frozenset({"BYTES", "STRING", "BYTES_", "STR", "OBJECT", "OBJECT_"})
"""Datatype names of string tensors (upper-cased): all are BYTES, sent as object arrays."""


def json_values(arr: np.ndarray) -> Any:
    """``arr`` as nested lists for a JSON body; BYTES elements as (UTF-8) strings."""
    if arr.dtype.kind != "O":
        return arr.tolist()
    flat = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in arr.ravel()]
    return np.asarray(flat, dtype=object).reshape(arr.shape).tolist()


def spec_dtype(name: str, dtype: str) -> str:
    """The numpy dtype name of ``dtype`` for input ``name``: a KServe v2 datatype (``FP32``,
    ``INT8``, ``BYTES``, ...) or a numpy name (``float32``, ``int8``, ...); string tensors are
    ``object`` arrays of bytes; anything else is a ValueError naming the fix."""
    if dtype.upper() in kserve.NUMPY_TYPES:
        return kserve.NUMPY_TYPES[dtype.upper()]
    if dtype.upper() in STRING_TYPES or dtype.lower() in ("str", "string", "bytes", "object"):
        return "object"  # a BYTES tensor: generated as seeded ASCII strings
    try:
        numpy_name = np.dtype(dtype).name
    except TypeError:
        numpy_name = ""
    if numpy_name not in kserve.V2_TYPES:
        known = ", ".join(sorted(kserve.NUMPY_TYPES))
        raise OptionValueError(
            f"input '{name}' has an unknown datatype '{dtype}'",
            f"use {known}, or the numpy name such as float32",
        )
    return str(numpy_name)


INPUTS_EXAMPLE = "write NAME:DTYPE:DIMxDIM, e.g. --opt inputs=x:FP32:1x16,ids:INT64:1x8"
"""The fix named by a malformed ``inputs`` option."""


def parse_input_specs(text: str) -> tuple[TensorSpec, ...]:
    """``name:FP32:1x16,other:int64:1x8`` into specs: KServe v2 datatypes or numpy names,
    ``?`` or ``-1`` for a dynamic dim. A malformed item is a ValueError saying how to write it."""
    specs = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        parts = item.split(":")
        if len(parts) != 3 or not parts[0]:
            raise OptionValueError(f"'{item}' is not NAME:DTYPE:DIMxDIM", INPUTS_EXAMPLE)
        name, dtype, dims = parts
        try:
            shape = tuple(
                None if d in ("?", "-1") else int(d) for d in dims.lower().split("x") if d
            )
        except ValueError:
            raise OptionValueError(
                f"'{item}': the shape '{dims}' is not DIMxDIM", INPUTS_EXAMPLE
            ) from None
        if any(d is not None and d < 0 for d in shape):
            raise OptionValueError(
                f"'{item}': a dimension is negative",
                "dimensions are positive, or ? (or -1) for a dynamic one",
            )
        specs.append(TensorSpec(name=name, shape=shape, dtype=spec_dtype(name, dtype)))
    return tuple(specs)
