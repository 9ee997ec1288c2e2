"""The KServe v2 (Open Inference Protocol) gRPC messages, built at import from the published
``grpc_predict_v2.proto`` (package ``inference``, service ``GRPCInferenceService``), without
generated code.

The messages below transcribe the published proto field by field (names, numbers, types); they
are built into a private descriptor pool with protobuf's own ``descriptor_pb2`` and
``message_factory``, so no ``protoc``, no generated ``_pb2`` module and no gencode/runtime
version pin is involved, and the pool never clashes with another library that registers the
same ``inference`` package (tritonclient, MLServer). Triton's ``grpc_service.proto`` is a
superset of these messages with the same numbers; a test checks the transcription field by
field against tritonclient's generated module.

Usage::

    req = M.ModelInferRequest(model_name="add")
    data = req.SerializeToString()
    M.ModelInferResponse.FromString(reply)
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "inference"
SERVICE = "GRPCInferenceService"
SERVICE_NAME = f"{PACKAGE}.{SERVICE}"
METHODS = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
)
"""The RPCs of the service (request and response types are ``<Method>Request/Response``)."""

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "bool": _F.TYPE_BOOL,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}

Field = tuple[str, int, str, bool]
"""(name, number, type, repeated): a scalar type name, or ``.inference.Message`` for a
message, or ``map:Value`` for ``map<string, Value>``."""

MESSAGES: dict[str, list[Field]] = {
    "ServerLiveRequest": [],
    "ServerLiveResponse": [("live", 1, "bool", False)],
    "ServerReadyRequest": [],
    "ServerReadyResponse": [("ready", 1, "bool", False)],
    "ModelReadyRequest": [("name", 1, "string", False), ("version", 2, "string", False)],
    "ModelReadyResponse": [("ready", 1, "bool", False)],
    "ServerMetadataRequest": [],
    "ServerMetadataResponse": [
        ("name", 1, "string", False),
        ("version", 2, "string", False),
        ("extensions", 3, "string", True),
    ],
    "ModelMetadataRequest": [("name", 1, "string", False), ("version", 2, "string", False)],
    "ModelMetadataResponse": [
        ("name", 1, "string", False),
        ("versions", 2, "string", True),
        ("platform", 3, "string", False),
        ("inputs", 4, ".inference.ModelMetadataResponse.TensorMetadata", True),
        ("outputs", 5, ".inference.ModelMetadataResponse.TensorMetadata", True),
    ],
    "ModelMetadataResponse.TensorMetadata": [
        ("name", 1, "string", False),
        ("datatype", 2, "string", False),
        ("shape", 3, "int64", True),
    ],
    "ModelInferRequest": [
        ("model_name", 1, "string", False),
        ("model_version", 2, "string", False),
        ("id", 3, "string", False),
        ("parameters", 4, "map:.inference.InferParameter", True),
        ("inputs", 5, ".inference.ModelInferRequest.InferInputTensor", True),
        ("outputs", 6, ".inference.ModelInferRequest.InferRequestedOutputTensor", True),
        ("raw_input_contents", 7, "bytes", True),
    ],
    "ModelInferRequest.InferInputTensor": [
        ("name", 1, "string", False),
        ("datatype", 2, "string", False),
        ("shape", 3, "int64", True),
        ("parameters", 4, "map:.inference.InferParameter", True),
        ("contents", 5, ".inference.InferTensorContents", False),
    ],
    "ModelInferRequest.InferRequestedOutputTensor": [
        ("name", 1, "string", False),
        ("parameters", 2, "map:.inference.InferParameter", True),
    ],
    "ModelInferResponse": [
        ("model_name", 1, "string", False),
        ("model_version", 2, "string", False),
        ("id", 3, "string", False),
        ("parameters", 4, "map:.inference.InferParameter", True),
        ("outputs", 5, ".inference.ModelInferResponse.InferOutputTensor", True),
        ("raw_output_contents", 6, "bytes", True),
    ],
    "ModelInferResponse.InferOutputTensor": [
        ("name", 1, "string", False),
        ("datatype", 2, "string", False),
        ("shape", 3, "int64", True),
        ("parameters", 4, "map:.inference.InferParameter", True),
        ("contents", 5, ".inference.InferTensorContents", False),
    ],
    "InferParameter": [  # oneof parameter_choice
        ("bool_param", 1, "bool", False),
        ("int64_param", 2, "int64", False),
        ("string_param", 3, "string", False),
        ("double_param", 4, "double", False),
        ("uint64_param", 5, "uint64", False),
    ],
    "InferTensorContents": [
        ("bool_contents", 1, "bool", True),
        ("int_contents", 2, "int32", True),
        ("int64_contents", 3, "int64", True),
        ("uint_contents", 4, "uint32", True),
        ("uint64_contents", 5, "uint64", True),
        ("fp32_contents", 6, "float", True),
        ("fp64_contents", 7, "double", True),
        ("bytes_contents", 8, "bytes", True),
    ],
}
"""Every message of grpc_predict_v2.proto; ``Outer.Inner`` is a nested message."""
ONEOFS = {"InferParameter": "parameter_choice"}


def _field(
    msg: descriptor_pb2.DescriptorProto, name: str, number: int, kind: str, repeated: bool
) -> None:
    f = msg.field.add(name=name, number=number, json_name=_camel(name))
    f.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if kind.startswith("map:"):
        entry = msg.nested_type.add(name=_camel(name, upper=True) + "Entry")
        entry.options.map_entry = True
        _field(entry, "key", 1, "string", False)
        _field(entry, "value", 2, kind[4:], False)
        f.type, f.type_name = _F.TYPE_MESSAGE, _entry_type(msg, entry.name)
    elif kind.startswith("."):
        f.type, f.type_name = _F.TYPE_MESSAGE, kind
    else:
        f.type = _SCALARS[kind]


_PATHS: dict[int, str] = {}
"""Full name of each DescriptorProto being built (by id), for map entry type names."""


def _entry_type(msg: descriptor_pb2.DescriptorProto, entry: str) -> str:
    return f"{_PATHS[id(msg)]}.{entry}"


def _camel(name: str, upper: bool = False) -> str:
    parts = name.split("_")
    head = parts[0].capitalize() if upper else parts[0]
    return head + "".join(p.capitalize() for p in parts[1:])


def _file() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tippingpoint/grpc_predict_v2.proto", package=PACKAGE, syntax="proto3"
    )
    built: dict[str, descriptor_pb2.DescriptorProto] = {}
    for full in sorted(MESSAGES, key=lambda n: n.count(".")):
        outer, _, inner = full.rpartition(".")
        parent = built[outer].nested_type if outer else fdp.message_type
        msg = parent.add(name=inner or full)
        built[full] = msg
        _PATHS[id(msg)] = f".{PACKAGE}.{full}"
    for full, fields in MESSAGES.items():
        msg = built[full]
        oneof = ONEOFS.get(full)
        if oneof is not None:
            msg.oneof_decl.add(name=oneof)
        for name, number, kind, repeated in fields:
            _field(msg, name, number, kind, repeated)
            if oneof is not None:
                msg.field[-1].oneof_index = 0
    service = fdp.service.add(name=SERVICE)
    for method in METHODS:
        service.method.add(
            name=method,
            input_type=f".{PACKAGE}.{method}Request",
            output_type=f".{PACKAGE}.{method}Response",
        )
    return fdp


POOL = descriptor_pool.DescriptorPool()
POOL.Add(_file())
FILE = POOL.FindFileByName("tippingpoint/grpc_predict_v2.proto")


class _Messages:
    """The message classes by name: ``M.ModelInferRequest``, ``M.InferTensorContents``."""

    def __getattr__(self, name: str) -> Any:
        cls = message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        setattr(self, name, cls)
        return cls


M: Any = _Messages()
"""The protocol's message classes (protobuf messages are dynamically typed: ``Any`` is the
typed boundary; the modules that use them convert to and from numpy at once)."""


def method_path(method: str) -> str:
    """The gRPC path of an RPC, e.g. ``/inference.GRPCInferenceService/ModelInfer``."""
    return f"/{SERVICE_NAME}/{method}"
