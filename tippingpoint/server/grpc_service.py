"""The KServe v2 gRPC port of the reference server (``tippingpoint serve --grpc-port``).

The same repository, checks and inference pool as the HTTP application
(:mod:`tippingpoint.server.app`), behind ``inference.GRPCInferenceService`` (ServerLive,
ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer) built from the published
protocol's messages (:mod:`tippingpoint.backends.grpc.proto`) with grpcio's generic handlers.
Bad requests end with a status and a one-line message: INVALID_ARGUMENT (malformed message,
wrong input name, shape or dtype), NOT_FOUND (unknown model or version), UNAUTHENTICATED
(missing or wrong bearer token), RESOURCE_EXHAUSTED (message over the size limit, by grpcio),
DEADLINE_EXCEEDED (an inference past the timeout). Each reply carries a ``server-timing``
trailer (decode, infer, encode, total; milliseconds).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tippingpoint.backends.grpc import tensors
from tippingpoint.backends.grpc.proto import METHODS, SERVICE_NAME, M
from tippingpoint.backends.http.kserve import CodecError, NamedTensor
from tippingpoint.server.app import BadRequest, InferenceService, ServerConfig, _check_inputs

if TYPE_CHECKING:
    import grpc
    import grpc.aio

STATUS_OF_HTTP = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND"}
"""The gRPC status of each HTTP status the shared checks raise (others: INTERNAL)."""


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3f}"


class GrpcInferenceService:
    """The RPC handlers over an :class:`~tippingpoint.server.app.InferenceService`."""

    def __init__(self, service: InferenceService, config: ServerConfig) -> None:
        self.service = service
        self.repo = service.repo
        self.config = config
        self._token = config.token.reveal().encode() if config.token is not None else None

    async def _abort(self, context: grpc.aio.ServicerContext[Any, Any], exc: BadRequest) -> None:
        import grpc

        code = getattr(grpc.StatusCode, STATUS_OF_HTTP.get(exc.status, "INTERNAL"))
        if exc.status == 503:
            code = grpc.StatusCode.DEADLINE_EXCEEDED
        await context.abort(code, exc.message)

    def _authorised(self, context: grpc.aio.ServicerContext[Any, Any]) -> bool:
        if self._token is None:
            return True
        given = dict(context.invocation_metadata() or ()).get("authorization", "")
        scheme, _, value = str(given).partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.encode("utf-8", "replace"), self._token
        )

    def _model(self, name: str, version: str) -> Any:
        model = self.repo.get(name)
        if model is None:
            known = ", ".join(m.name for m in self.repo) or "none"
            raise BadRequest(404, f"unknown model '{name}' (served: {known})")
        if version and version != model.version:
            raise BadRequest(
                404, f"model '{name}' has no version '{version}' (has {model.version})"
            )
        return model

    async def server_live(self, request: Any, context: Any) -> Any:
        """ServerLive: always live while serving."""
        return M.ServerLiveResponse(live=True)

    async def server_ready(self, request: Any, context: Any) -> Any:
        """ServerReady: ready once every model is loaded (they load before start)."""
        return M.ServerReadyResponse(ready=len(self.repo) > 0)

    async def model_ready(self, request: Any, context: Any) -> Any:
        """ModelReady: whether the named model (and version) is served."""
        return M.ModelReadyResponse(ready=self.repo.get(request.name) is not None)

    async def server_metadata(self, request: Any, context: Any) -> Any:
        """ServerMetadata: name, version, extensions."""
        from tippingpoint import __version__
        from tippingpoint.server.app import SERVER_NAME

        return M.ServerMetadataResponse(
            name=SERVER_NAME, version=__version__, extensions=["model_repository"]
        )

    async def model_metadata(self, request: Any, context: Any) -> Any:
        """ModelMetadata: the model's tensors, version and platform."""
        model = self._model(request.name, request.version)
        return tensors.metadata_response(
            model.name, [model.version], model.platform, model.inputs, model.outputs
        )

    async def model_infer(self, request: Any, context: Any) -> Any:
        """ModelInfer with raw or typed tensor contents; raw outputs."""
        clock = time.perf_counter_ns
        t0 = clock()
        model = self._model(request.model_name, request.model_version)
        try:
            named = tensors.decode_request(request)
        except CodecError as exc:
            raise BadRequest(400, str(exc)) from None
        feeds = _check_inputs(model, tuple(named))
        out_names = [s.name for s in model.outputs]
        wanted = [o.name for o in request.outputs] or out_names
        missing = [n for n in wanted if n not in out_names]
        if missing:
            raise BadRequest(
                400, f"model '{model.name}' has no output '{missing[0]}' (outputs: "
                f"{', '.join(out_names)})"
            )  # fmt: skip
        call = model.runner(feeds)
        t1 = clock()
        loop = asyncio.get_running_loop()
        timeout = self.config.request_timeout_s
        try:
            results = await asyncio.wait_for(loop.run_in_executor(self.service.pool, call), timeout)
        except TimeoutError:
            raise BadRequest(503, f"inference did not finish within {timeout:g} s") from None
        except Exception as exc:  # the runtime rejected inputs that passed the checks
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise BadRequest(400, f"inference failed: {type(exc).__name__}: {first}") from None
        t2 = clock()
        by_name = dict(zip(out_names, results, strict=False))
        outs = [NamedTensor(n, np.asarray(by_name[n])) for n in wanted]
        try:
            reply = tensors.encode_response(model.name, model.version, outs, request.id)
        except CodecError as exc:
            raise BadRequest(500, f"cannot encode output: {exc}") from None
        t3 = clock()
        context.set_trailing_metadata(
            (
                (
                    "server-timing",
                    f"decode;dur={_ms(t1 - t0)}, infer;dur={_ms(t2 - t1)}, "
                    f"encode;dur={_ms(t3 - t2)}, total;dur={_ms(t3 - t0)}",
                ),
            )
        )
        return reply

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        """The generic handler of ``inference.GRPCInferenceService``: token check and one-line
        statuses around every method."""
        import grpc

        impl: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
            "ServerLive": self.server_live,
            "ServerReady": self.server_ready,
            "ModelReady": self.model_ready,
            "ServerMetadata": self.server_metadata,
            "ModelMetadata": self.model_metadata,
            "ModelInfer": self.model_infer,
        }
        open_methods = {"ServerLive", "ServerReady"}  # health checks answer without a token

        def guarded(name: str) -> Callable[[Any, Any], Awaitable[Any]]:
            fn = impl[name]

            async def run(request: Any, context: Any) -> Any:
                if name not in open_methods and not self._authorised(context):
                    await context.abort(
                        grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token"
                    )
                try:
                    return await fn(request, context)
                except BadRequest as exc:
                    await self._abort(context, exc)

            return run

        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                guarded(name),
                request_deserializer=getattr(M, f"{name}Request").FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )
            for name in METHODS
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)


async def start_grpc(
    service: InferenceService, config: ServerConfig, host: str, port: int
) -> tuple[grpc.aio.Server, int]:
    """A started ``grpc.aio`` server on ``host:port`` (0: a free port), TLS when the config
    has a certificate; returns it and the bound port. A port that cannot be bound is an
    OSError."""
    import grpc
    import grpc.aio

    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", config.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers((GrpcInferenceService(service, config).handler(),))
    shown = f"[{host}]" if ":" in host else host
    address = f"{shown}:{port}"
    try:
        if config.tls_cert is not None:
            key = (config.tls_key or config.tls_cert).read_bytes()
            creds = grpc.ssl_server_credentials([(key, config.tls_cert.read_bytes())])
            bound = server.add_secure_port(address, creds)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpcio raises when the port cannot be bound
        raise OSError(98, "address already in use or not permitted") from exc
    if not bound:
        raise OSError(98, "address already in use or not permitted")
    await server.start()
    return server, bound
