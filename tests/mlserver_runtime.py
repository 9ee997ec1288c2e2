"""A custom MLServer runtime (MLServer's documented way to serve a model it has no runtime for)
that runs an ONNX file with onnxruntime: MLServer itself speaks the protocol (REST and gRPC),
this class only turns its decoded tensors into outputs. Copied into the model folder by
tests/test_interop_mlserver.py and loaded by ``mlserver start`` as
``mlserver_runtime.OnnxModel``."""

from __future__ import annotations

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxModel(MLModel):  # type: ignore[misc]  # MLServer's base class is untyped here
    """The ONNX file named by the model settings' ``parameters.uri``."""

    async def load(self) -> bool:
        uri = self.settings.parameters.uri
        self.session = ort.InferenceSession(uri, providers=["CPUExecutionProvider"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {t.name: NumpyCodec.decode_input(t) for t in payload.inputs}
        names = [o.name for o in self.session.get_outputs()]
        values = self.session.run(names, feeds)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output(n, v) for n, v in zip(names, values, strict=True)],
        )
