"""The KServe v2 HTTP application of the reference server (aiohttp).

Routes follow the Open Inference Protocol (plus Triton's repository index, so the official
``tritonclient`` can list models). Every response to a bad request is a 4xx with a JSON
``{"error": ...}`` naming the problem: malformed JSON, unknown model or input, wrong shape or
dtype (400), missing or wrong token (401), body over the size limit (413), body not received
within the request timeout or headers within the header timeout (408,
:mod:`tippingpoint.server.protocol`). An inference that outlives the timeout answers 503. Each
response carries ``Server-Timing`` (decode, queue+infer, encode, total; milliseconds).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tippingpoint.backends.http import kserve
from tippingpoint.backends.http.auth import Secret
from tippingpoint.backends.http.kserve import CodecError, NamedTensor
from tippingpoint.server.repository import ModelRepository, ServedModel

if TYPE_CHECKING:
    from aiohttp import web

    from tippingpoint.server.openai import OpenAiService

LOG = logging.getLogger("tippingpoint.server")
SERVER_NAME = "tippingpoint"
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
"""Health checks answer without a token (load balancers probe them)."""


@dataclass(frozen=True)
class ServerConfig:
    """How the server listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 64 * 1024 * 1024
    request_timeout_s: float = 30.0
    header_timeout_s: float = 30.0
    """A request's line and headers must arrive within this from their first byte (408)."""
    threads: int = 1
    token: Secret | None = field(default=None, repr=False)
    access_log: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def scheme(self) -> str:
        """``https`` when a certificate is configured, else ``http``."""
        return "https" if self.tls_cert is not None else "http"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context, or None for plain HTTP."""
        if self.tls_cert is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx


class BadRequest(Exception):
    """A client error: HTTP status and a message for the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(status: int, doc: object, headers: dict[str, str] | None = None) -> web.Response:
    import json

    from aiohttp import web

    return web.Response(
        status=status,
        body=json.dumps(doc, separators=(",", ":")).encode(),
        content_type="application/json",
        headers=headers,
    )


def _error(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _json(status, {"error": message}, headers)


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3f}"


def _check_inputs(model: ServedModel, tensors: tuple[NamedTensor, ...]) -> list[np.ndarray]:
    """Order the request's tensors by the model's inputs, checking names, dtypes and shapes."""
    by_name: dict[str, np.ndarray] = {}
    for t in tensors:
        if t.name in by_name:
            raise BadRequest(400, f"input '{t.name}' is given twice")
        by_name[t.name] = t.array
    expected = {s.name for s in model.inputs}
    unknown = [n for n in by_name if n not in expected]
    if unknown:
        raise BadRequest(
            400,
            f"model '{model.name}' has no input '{unknown[0]}' "
            f"(inputs: {', '.join(s.name for s in model.inputs)})",
        )
    feeds = []
    for spec in model.inputs:
        if spec.name not in by_name:
            raise BadRequest(400, f"input '{spec.name}' of model '{model.name}' is missing")
        arr = by_name[spec.name]
        if arr.dtype != np.dtype(spec.dtype):
            raise BadRequest(
                400,
                f"input '{spec.name}' is {kserve.v2_datatype(arr.dtype)}, model "
                f"'{model.name}' expects {kserve.v2_datatype(spec.dtype)}",
            )
        if arr.ndim != len(spec.shape) or any(
            d is not None and d != a for d, a in zip(spec.shape, arr.shape, strict=True)
        ):
            want = [-1 if d is None else d for d in spec.shape]
            raise BadRequest(
                400, f"input '{spec.name}' has shape {list(arr.shape)}, model expects {want}"
            )
        feeds.append(arr)
    return feeds


def _tensor_meta(model: ServedModel) -> dict[str, Any]:
    return kserve.metadata_document(
        model.name, [model.version], model.platform, model.inputs, model.outputs
    )


class InferenceService:
    """Request handlers over a repository; inference runs on a bounded thread pool."""

    def __init__(self, repo: ModelRepository, config: ServerConfig) -> None:
        self.repo = repo
        self.config = config
        self.pool = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="infer")

    def _model(self, request: web.Request) -> ServedModel:
        name = request.match_info["name"]
        model = self.repo.get(name)
        if model is None:
            known = ", ".join(m.name for m in self.repo) or "none"
            raise BadRequest(404, f"unknown model '{name}' (served: {known})")
        version = request.match_info.get("version")
        if version is not None and version != model.version:
            raise BadRequest(
                404, f"model '{name}' has no version '{version}' (has {model.version})"
            )
        return model

    async def server_metadata(self, request: web.Request) -> web.Response:
        """GET /v2."""
        from tippingpoint import __version__

        return _json(
            200,
            {
                "name": SERVER_NAME,
                "version": __version__,
                "extensions": ["binary_tensor_data", "model_repository"],
            },
        )

    async def live(self, request: web.Request) -> web.Response:
        """GET /v2/health/live."""
        from aiohttp import web

        return web.Response(status=200)

    async def ready(self, request: web.Request) -> web.Response:
        """GET /v2/health/ready: ready once every model is loaded (they load before start)."""
        from aiohttp import web

        return web.Response(status=200 if len(self.repo) else 503)

    async def model_ready(self, request: web.Request) -> web.Response:
        """GET /v2/models/{name}[/versions/{v}]/ready."""
        from aiohttp import web

        self._model(request)
        return web.Response(status=200)

    async def model_metadata(self, request: web.Request) -> web.Response:
        """GET /v2/models/{name}[/versions/{v}]."""
        return _json(200, _tensor_meta(self._model(request)))

    async def model_config(self, request: web.Request) -> web.Response:
        """GET /v2/models/{name}/config: a Triton-style summary (for tritonclient)."""
        model = self._model(request)
        meta = _tensor_meta(model)

        def dims(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                {"name": e["name"], "data_type": "TYPE_" + e["datatype"], "dims": e["shape"]}
                for e in entries
            ]

        return _json(
            200,
            {
                "name": model.name,
                "platform": model.platform,
                "max_batch_size": 0,
                "input": dims(meta["inputs"]),
                "output": dims(meta["outputs"]),
            },
        )

    async def repository_index(self, request: web.Request) -> web.Response:
        """POST /v2/repository/index (Triton's extension): every model and its state."""
        return _json(
            200, [{"name": m.name, "version": m.version, "state": "READY"} for m in self.repo]
        )

    async def _read_body(self, request: web.Request) -> bytes:
        from aiohttp import web

        length = request.content_length
        if length is not None and length > self.config.max_body_bytes:
            raise BadRequest(
                413,
                f"request body of {length} bytes exceeds the limit of "
                f"{self.config.max_body_bytes} bytes",
            )
        try:
            return await asyncio.wait_for(request.read(), self.config.request_timeout_s)
        except TimeoutError:
            raise BadRequest(
                408, f"request body not received within {self.config.request_timeout_s:g} s"
            ) from None
        except web.HTTPRequestEntityTooLarge:
            raise BadRequest(
                413, f"request body exceeds the limit of {self.config.max_body_bytes} bytes"
            ) from None

    async def infer(self, request: web.Request) -> web.Response:
        """POST /v2/models/{name}[/versions/{v}]/infer, JSON or binary tensors."""
        from aiohttp import web

        clock = time.perf_counter_ns
        t0 = clock()
        model = self._model(request)
        raw_len = request.headers.get(kserve.HEADER_LENGTH)
        try:
            header_len = int(raw_len) if raw_len is not None else None
        except ValueError:
            raise BadRequest(400, f"{kserve.HEADER_LENGTH} must be an integer") from None
        body = await self._read_body(request)
        try:
            req = kserve.decode_request(body, header_len)
        except CodecError as exc:
            raise BadRequest(400, str(exc)) from None
        feeds = _check_inputs(model, req.inputs)
        out_names = [s.name for s in model.outputs]
        wanted = list(req.outputs) or out_names
        missing = [n for n in wanted if n not in out_names]
        if missing:
            raise BadRequest(
                400,
                f"model '{model.name}' has no output '{missing[0]}' (outputs: "
                f"{', '.join(out_names)})",
            )
        call = model.runner(feeds)
        t1 = clock()
        loop = asyncio.get_running_loop()
        try:
            results = await asyncio.wait_for(
                loop.run_in_executor(self.pool, call), self.config.request_timeout_s
            )
        except TimeoutError:
            raise BadRequest(
                503, f"inference did not finish within {self.config.request_timeout_s:g} s"
            ) from None
        except Exception as exc:  # the runtime rejected inputs that passed our checks
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            status = 400 if "INVALID_ARGUMENT" in first or "InvalidArgument" in repr(exc) else 500
            raise BadRequest(status, f"inference failed: {type(exc).__name__}: {first}") from None
        t2 = clock()
        by_name = dict(zip(out_names, results, strict=False))
        tensors = [NamedTensor(n, np.asarray(by_name[n])) for n in wanted]
        binary = [req.binary_default or n in req.binary_outputs for n in wanted]
        try:
            enc = kserve.encode_response(model.name, tensors, binary, req.id, model.version)
        except CodecError as exc:
            raise BadRequest(500, f"cannot encode output: {exc}") from None
        t3 = clock()
        headers = enc.headers()
        headers["Server-Timing"] = (
            f"decode;dur={_ms(t1 - t0)}, infer;dur={_ms(t2 - t1)}, "
            f"encode;dur={_ms(t3 - t2)}, total;dur={_ms(t3 - t0)}"
        )
        return web.Response(status=200, body=enc.body, headers=headers)

    def close(self) -> None:
        """Stop the inference threads."""
        self.pool.shutdown(wait=False, cancel_futures=True)


Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


def create_app(
    repo: ModelRepository, config: ServerConfig, llm: OpenAiService | None = None
) -> web.Application:
    """The aiohttp application serving ``repo`` under ``config``, and with ``llm`` the
    OpenAI-compatible routes (:mod:`tippingpoint.server.openai`) behind the same token check."""
    from aiohttp import web

    service = InferenceService(repo, config)
    token = config.token.reveal().encode() if config.token is not None else None

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            # a header that is not UTF-8 (bytes kept as surrogates) is a wrong token, not a 500
            sent = value.encode("utf-8", "surrogateescape")
            if scheme.lower() != "bearer" or not hmac.compare_digest(sent, token):
                return _error(401, "missing or wrong bearer token")
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(exc.status, exc.message)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, exc.reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # one line in the log; the traceback only at debug level
            LOG.error(
                "unexpected error handling %s %s: %s", request.method, request.path, repr(exc)
            )
            LOG.debug("traceback of the unexpected error", exc_info=True)
            return _error(500, "internal server error (see the server's log)")

    app = web.Application(middlewares=[errors], client_max_size=config.max_body_bytes)
    r = app.router
    s = service
    r.add_get("/v2", s.server_metadata)
    r.add_get("/v2/health/live", s.live)
    r.add_get("/v2/health/ready", s.ready)
    r.add_post("/v2/repository/index", s.repository_index)
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        r.add_get(base, s.model_metadata)
        r.add_get(base + "/ready", s.model_ready)
        r.add_get(base + "/config", s.model_config)
        r.add_post(base + "/infer", s.infer)
    if llm is not None:
        llm.register(app)

    async def cleanup(_: web.Application) -> None:
        service.close()

    app.on_cleanup.append(cleanup)
    return app
