"""The ``http`` backend: a model behind a remote endpoint, as a
:class:`~tippingpoint.backends.network.NetworkSession`.

The session owns an event loop on a background thread and an HTTP client on it (aiohttp, or
the raw asyncio client). ``bind(feeds)`` encodes the request once and returns a blocking call
that sends it and decodes the response (first inference, accuracy passes); ``request_fn``
supplies the transport the harness's load scenarios (:mod:`tippingpoint.harness.network`)
schedule on the session's loop. This module holds the transport only: options, the client,
the codec, and the session around them.

Usage::

    backend = HttpBackend()
    with backend.load(Path("mlp-tiny.onnx"), {"endpoint": "http://127.0.0.1:8000"}) as session:
        outputs = session.bind(feeds)()
        send = session.request_fn(ScenarioKind.SINGLE_STREAM, feeds)
        completion = session.run_async(send(), timeout=10.0)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import platform
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from tippingpoint.backends.base import SessionBase
from tippingpoint.backends.http.auth import (
    AuthConfig,
    AuthKind,
    Endpoint,
    load_secret,
    parse_endpoint,
    public_url,
)
from tippingpoint.backends.http.client import (
    RETRYABLE,
    ClientBase,
    ClientSettings,
    EndpointError,
    ErrorKind,
    HttpClient,
    PreparedRequest,
    checked_connect_to,
    parse_connect_to,
)
from tippingpoint.backends.http.kserve import CodecError
from tippingpoint.backends.http.protocols import (
    Codec,
    HttpMethod,
    KServeV2Codec,
    TemplateCodec,
    TfServingCodec,
    WireProtocol,
    parse_input_specs,
)
from tippingpoint.backends.network import Completion, NetworkInfo, NetworkLimits, RequestFn
from tippingpoint.backends.options import parse_options
from tippingpoint.backends.remote import ChosenSpecs, Specs, choose_specs, local_specs
from tippingpoint.core.errors import (
    InferenceError,
    InvalidOptionError,
    RuntimeNotInstalledError,
    UnknownModelError,
)
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import RemoteModel, SpecSource
from tippingpoint.core.types import (
    Availability,
    BackendDescription,
    Device,
    OptionValue,
    TensorSpec,
)

T = TypeVar("T")
INSTALL_HINT = "pip install 'tippingpoint[http]'"
SETUP_TIMEOUT_S = 60.0
PLACEHOLDER_ENDPOINT = "http://127.0.0.1:1"
"""Stands in for a missing endpoint when options are validated before one is known."""
BIND_TRIES = 5
"""Tries of a blocking call (the first inference, accuracy passes) on a transient failure
(5xx, timeout, connection): one failed first request must not fail a run against a server
that recovers. The measured requests are never retried unless ``retries`` says so."""
BIND_BACKOFF_S = 0.1
"""Pause before the n-th retry of a blocking call: n times this."""
CANCEL_WAIT_S = 30.0
"""How long Ctrl-C waits for a cancelled load to hand back its partial run."""
RAW_RUNTIME = "asyncio"
"""The runtime a report names when the raw client measured (Python's asyncio)."""


class ClientKind(str, Enum):
    """Which HTTP client sends the requests (both time and classify requests the same way)."""

    AUTO = "auto"
    """raw for open-loop (server) runs on plain http://, aiohttp for everything else."""
    AIOHTTP = "aiohttp"
    RAW = "raw"
    """HTTP/1.1 written straight on asyncio's transports (rawclient.py): several times
    cheaper per request, for high open-loop rates."""


class HttpOptions(BaseModel):
    """Options of the HTTP backend; every one is recorded in the report (never a secret)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str = Field(
        description="base URL, e.g. http://127.0.0.1:8000 (user info and query allowed)",
        repr=False,  # it may hold credentials: recorded() gives the printable form
    )
    protocol: WireProtocol = WireProtocol.KSERVE_V2
    model_name: str | None = Field(default=None, description="default: the model file's stem")
    model_version: str | None = None
    binary: bool = Field(default=True, description="KServe v2 binary tensors (else JSON)")
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=600)
    max_connections: int = Field(default=256, ge=1, le=65536)
    max_inflight: int = Field(default=4096, ge=1, le=1_000_000)
    retries: int = Field(default=0, ge=0, le=10)
    tls_verify: bool = True
    token_env: str | None = Field(default=None, description="environment variable with the token")
    token_file: str | None = Field(default=None, description="file whose first line is the token")
    auth_header: str | None = Field(
        default=None, description="send the token in this header instead of a bearer token"
    )
    server_timing_metric: str = "total"
    client: ClientKind = Field(
        default=ClientKind.AUTO,
        description="aiohttp, raw (asyncio HTTP/1.1, faster), or auto: raw for open-loop "
        "runs on http://, aiohttp otherwise; the report records the one that measured",
    )
    check_ready: bool = True
    path: str = Field(default="/", description="template protocol: request path")
    template: str = Field(default="", description="template protocol: JSON body, or @file")
    response_path: str = Field(default="", description="template protocol: dotted output path")
    method: HttpMethod = HttpMethod.POST
    inputs: str = Field(
        default="",
        description="input specs NAME:DTYPE:1x16,... (FP32 or float32) where neither the "
        "server's metadata nor a local file gives them",
    )
    tf_signature: str = "serving_default"
    latency_bound_ms: float | None = Field(
        default=None, gt=0, description="server scenario: find the peak rate meeting this p99"
    )
    connect_to: Annotated[str | None, AfterValidator(checked_connect_to)] = Field(
        default=None,
        description="HOST:PORT to open TCP connections to instead of the URL's (curl "
        "--connect-to): TLS keeps the URL's host name for SNI and the certificate check, HTTP "
        "its Host header (run --network points https:// endpoints at the shaper this way)",
    )

    @field_validator("endpoint")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, v: str) -> str:
        parse_input_specs(v)  # a ValueError names the item and the fix
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return v if v.startswith("/") else "/" + v

    def recorded(self) -> dict[str, OptionValue]:
        """The options as the report shows them: endpoint without credentials."""
        data = self.model_dump(mode="json")
        data["endpoint"] = public_url(self.endpoint)
        if data["template"]:
            data["template"] = data["template"][:200]
        return data


class LoopThread:
    """An asyncio event loop running on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="tippingpoint-http", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for it; Ctrl-C cancels it."""
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except KeyboardInterrupt:
            fut.cancel()
            raise
        except TimeoutError:
            fut.cancel()
            raise

    def run_interruptible(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` as a task; on Ctrl-C cancel the task and return what it returns then
        (the load generator returns its partial run when cancelled)."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        holder: dict[str, asyncio.Task[T]] = {}

        def copy(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                done.set_exception(KeyboardInterrupt())
            elif task.exception() is not None:
                done.set_exception(task.exception())
            else:
                done.set_result(task.result())

        def start() -> None:
            holder["task"] = self.loop.create_task(coro)
            holder["task"].add_done_callback(copy)

        self.loop.call_soon_threadsafe(start)
        try:
            return done.result(timeout)
        except KeyboardInterrupt:
            self.loop.call_soon_threadsafe(lambda: holder["task"].cancel())
            return done.result(CANCEL_WAIT_S)
        except concurrent.futures.TimeoutError:
            self.loop.call_soon_threadsafe(lambda: holder["task"].cancel())
            raise InferenceError(
                f"the load did not finish within its budget of {timeout:.0f} s (the endpoint "
                "or the load generator fell behind)",
                "lower --rate or --concurrency, or raise --opt timeout_s",
            ) from None

    def stop(self) -> None:
        """Stop the loop and join its thread."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


def _auth(opts: HttpOptions, endpoint: Endpoint) -> AuthConfig:
    """The credential to send: a token (bearer, or in ``auth_header``), else HTTP Basic from
    the URL's user info; the URL's credentials are scrubbed from every text either way."""
    hidden = endpoint.hidden
    basic = endpoint.basic()
    if opts.token_env is None and opts.token_file is None:
        if opts.auth_header is not None:
            raise InvalidOptionError(
                "auth_header is set but no token source is given",
                "add token_env=VARIABLE or token_file=PATH",
            )
        if basic is not None:
            return AuthConfig(AuthKind.BASIC, basic, also_hidden=hidden)
        return AuthConfig(also_hidden=hidden)
    secret = load_secret(opts.token_env, opts.token_file)
    if opts.auth_header and opts.auth_header.lower() != "authorization":
        if basic is not None:
            raise InvalidOptionError(
                "the endpoint URL holds user info and a token goes in "
                f"{opts.auth_header}: only one credential is sent",
                "drop the user info from the URL, or the token options",
            )
        return AuthConfig(AuthKind.HEADER, secret, opts.auth_header, also_hidden=hidden)
    if basic is not None:
        raise InvalidOptionError(
            "the endpoint URL holds user info (HTTP Basic) and a bearer token is set: both "
            "would be the Authorization header",
            "drop the user info from the URL, or token_env/token_file",
        )
    if opts.auth_header:
        return AuthConfig(AuthKind.HEADER, secret, opts.auth_header, also_hidden=hidden)
    return AuthConfig(AuthKind.BEARER, secret, also_hidden=hidden)


def _codec(opts: HttpOptions, model_name: str) -> Codec:
    if opts.protocol is WireProtocol.KSERVE_V2:
        return KServeV2Codec(model_name, opts.model_version, opts.binary)
    if opts.protocol is WireProtocol.TFSERVING:
        return TfServingCodec(model_name, opts.model_version, opts.tf_signature)
    template = opts.template
    if template.startswith("@"):
        path = Path(template[1:]).expanduser()
        try:
            template = path.read_text()
        except OSError:
            raise InvalidOptionError(
                f"cannot read the template file {path}", "check template=@PATH"
            ) from None
    return TemplateCodec(opts.path, template, opts.response_path, opts.method)


class HttpSession(SessionBase):
    """A remote model: specs from the endpoint's metadata (or the ``inputs`` option), requests
    through one client; the description names the client that measured the last scenario."""

    def __init__(
        self,
        opts: HttpOptions,
        codec: Codec,
        client: ClientBase,
        loop: LoopThread,
        inputs: tuple[TensorSpec, ...],
        outputs: tuple[TensorSpec, ...],
        description: BackendDescription,
        discovery: Discovery | None = None,
    ) -> None:
        super().__init__(inputs, outputs, description)
        self.discovery = discovery
        self.options = opts
        self.codec = codec
        self.client = client
        self.loop_thread = loop
        self._closed = False
        self._open_loop_client: ClientBase | None = None

    @property
    def auth(self) -> AuthConfig:
        """The credential configuration (its secret never prints)."""
        return self.client.auth

    def client_for(self, kind: ScenarioKind) -> ClientBase:
        """The client that measures scenario ``kind``: the session's own, or with
        ``client=auto`` the raw client for open-loop runs on plain HTTP (opened once, on the
        session's loop). The description records the client that measured."""
        opts = self.options
        if not (
            opts.client is ClientKind.AUTO
            and kind is ScenarioKind.SERVER
            and opts.endpoint.startswith("http://")
        ):
            return self.client
        if self._open_loop_client is None:
            from tippingpoint.backends.http.rawclient import RawHttpClient

            raw = RawHttpClient(self.client.settings, self.client.auth)
            self.run(raw.start(), SETUP_TIMEOUT_S)
            self._open_loop_client = raw
        desc = self._description
        self._description = desc.model_copy(
            update={
                "runtime": RAW_RUNTIME,
                "runtime_version": platform.python_version(),
                "options": {**desc.options, "client": ClientKind.RAW.value},
            }
        )
        return self._open_loop_client

    def prepare(
        self, feeds: Sequence[np.ndarray], client: ClientBase | None = None
    ) -> PreparedRequest:
        """Encode one batch into a request sent many times by ``client`` (default: the
        session's); encoding is not timed."""
        if len(feeds) != len(self._inputs):
            raise InferenceError(
                f"expected {len(self._inputs)} input arrays, got {len(feeds)}",
                "give one array per model input",
            )
        try:
            enc = self.codec.encode(self._inputs, feeds)
        except CodecError as exc:
            raise InferenceError(f"cannot encode the request: {exc}", "check the inputs") from None
        return (client or self.client).prepare(
            self.codec.method, self.codec.infer_path(), enc.body, enc.headers()
        )

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the session's event loop (where the client lives)."""
        return self.loop_thread.run(coro, timeout)

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """A blocking call: send the prepared request, decode the outputs; a transient failure
        is tried again (:data:`BIND_TRIES`), a lasting one raises InferenceError naming its
        kind."""
        req = self.prepare(feeds)
        timeout = self.options.timeout_s * (self.options.retries + 1) + 5

        def call() -> Sequence[np.ndarray]:
            for attempt in range(1, BIND_TRIES + 1):
                c, body, headers = self.run(self.client.send(req), timeout)
                if c.error is None or c.error not in RETRYABLE or attempt == BIND_TRIES:
                    break
                time.sleep(BIND_BACKOFF_S * attempt)  # a server that recovers is not a failed run
            if c.error is not None:
                detail = self.auth.excerpt(body) if body else ""
                raise InferenceError(
                    self.auth.scrub(
                        f"request to {public_url(req.url)} failed: {c.error}"
                        + (f": {detail}" if detail else "")
                    ),
                    "check the endpoint's logs and the inputs",
                )
            try:
                return self.codec.decode(body, headers, self._outputs)
            except CodecError as exc:
                raise InferenceError(
                    self.auth.scrub(f"cannot decode the response: {exc}"),
                    "check --opt protocol= matches the endpoint",
                ) from None

        return call

    def request_fn(self, kind: ScenarioKind, feeds: Sequence[np.ndarray]) -> RequestFn:
        """Encode ``feeds`` once for the client that measures ``kind`` (see
        :meth:`client_for`) and return the function that sends that request on the loop. Every
        successful reply is decoded (after it was timed); one that does not decode counts as
        an ``undecodable`` failure."""
        client = self.client_for(kind)
        req = self.prepare(feeds, client)
        send = client.send
        decode = self.codec.decode
        outputs = self._outputs

        async def fn() -> Completion:
            c, body, headers = await send(req)
            if c.error is None:
                # after end_ns: a reply the protocol cannot decode is a failure, not a success
                try:
                    decode(body, headers, outputs)
                except CodecError:
                    return c._replace(error=ErrorKind.UNDECODABLE.value)
            return c

        return fn

    def run_async(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` as a task on the session's loop; on Ctrl-C the task is cancelled and
        what it returns then is returned (see :meth:`LoopThread.run_interruptible`)."""
        return self.loop_thread.run_interruptible(coro, timeout)

    @property
    def limits(self) -> NetworkLimits:
        """Timeout and retries per request, the in-flight cap and the latency bound."""
        opts = self.options
        return NetworkLimits(
            timeout_s=opts.timeout_s,
            retries=opts.retries,
            max_inflight=opts.max_inflight,
            latency_bound_ms=opts.latency_bound_ms,
        )

    def network_info(self) -> NetworkInfo:
        """The wire protocol (``+binary`` with KServe binary tensors), the endpoint without
        credentials, TLS verification on https:// and the credential scheme."""
        codec = self.codec
        binary = isinstance(codec, KServeV2Codec) and codec.binary
        endpoint = self.options.endpoint
        return NetworkInfo(
            protocol=codec.protocol.value + ("+binary" if binary else ""),
            endpoint=public_url(endpoint),
            tls_verify=self.options.tls_verify if endpoint.startswith("https") else None,
            auth=self.auth.describe(),
        )

    def remote_model(self) -> RemoteModel:
        """The model as the endpoint states it: name, version, platform, where the specs
        came from, whether a local file was given, and a mismatch warning."""
        found = self.discovery
        info = self.network_info()
        return RemoteModel(
            name=str(self._description.options.get("model_name", "")),
            version=found.version if found else None,
            platform=found.platform if found else None,
            endpoint=info.endpoint,
            protocol=info.protocol,
            specs_from=found.specs.source if found else SpecSource.OPTION,
            local_file=found.local_file if found else False,
            warning=self.auth.scrub(found.specs.warning) if found and found.specs.warning else None,
        )

    def close(self) -> None:
        """Close the connection pool and stop the event loop."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._open_loop_client is not None:
                self.run(self._open_loop_client.close(), 10)
            self.run(self.client.close(), 10)
        finally:
            self.loop_thread.stop()


class HttpBackend:
    """A model served over HTTP (KServe v2, TF Serving REST, or a JSON template)."""

    name = "http"
    formats: tuple[str, ...] = (".onnx", ".tflite", ".pt2", ".pt", "")
    runtime = "aiohttp"
    network = True
    """Its sessions are network sessions: the harness runs the server and concurrency
    scenarios on them, and the model file is optional (the endpoint has the model)."""

    def availability(self) -> Availability:
        """Installed when aiohttp is importable."""
        installed = importlib.util.find_spec("aiohttp") is not None
        try:
            ver: str | None = version("aiohttp")
        except PackageNotFoundError:
            ver = None
        return Availability(
            installed=installed, runtime=self.runtime, version=ver, install_hint=INSTALL_HINT
        )

    def validate_options(self, options: Mapping[str, OptionValue]) -> None:
        """Parse ``options`` without connecting (the endpoint may be given later, e.g. by the
        local stand-in server); InvalidOptionError when one is bad."""
        parse_options(HttpOptions, {"endpoint": PLACEHOLDER_ENDPOINT, **options}, self.name)

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> HttpSession:
        """Connect to the endpoint, check readiness, and read the model's metadata."""
        if "endpoint" not in options:
            raise InvalidOptionError(
                "the http backend needs an endpoint", "pass --opt endpoint=http://HOST:PORT"
            )
        opts: HttpOptions = parse_options(HttpOptions, options, self.name)
        try:
            import aiohttp
        except ImportError:
            raise RuntimeNotInstalledError("aiohttp is not installed", INSTALL_HINT) from None
        model_name = opts.model_name or Path(model).stem
        endpoint = parse_endpoint(opts.endpoint)
        auth = _auth(opts, endpoint)
        codec = _codec(opts, model_name)
        settings = ClientSettings(
            base_url=endpoint.base_url,
            query=endpoint.query,
            timeout_s=opts.timeout_s,
            connect_timeout_s=opts.connect_timeout_s,
            max_connections=opts.max_connections,
            retries=opts.retries,
            tls_verify=opts.tls_verify,
            server_timing_metric=opts.server_timing_metric,
            connect_to=parse_connect_to(opts.connect_to) if opts.connect_to else None,
        )
        client: ClientBase
        if opts.client is ClientKind.RAW:
            from tippingpoint.backends.http.rawclient import RawHttpClient

            client = RawHttpClient(settings, auth)
            runtime, runtime_version = RAW_RUNTIME, platform.python_version()
        else:
            client = HttpClient(settings, auth)
            runtime, runtime_version = self.runtime, aiohttp.__version__
        loop = LoopThread()
        try:
            loop.run(client.start(), SETUP_TIMEOUT_S)
            found = discover(loop, client, codec, opts, Path(model), model_name)
        except BaseException:
            loop.run(client.close(), 10)
            loop.stop()
            raise
        description = BackendDescription(
            name=self.name,
            runtime=runtime,
            runtime_version=runtime_version,
            device=Device.REMOTE,
            device_name=public_url(opts.endpoint),
            options={
                **opts.recorded(),
                "model_name": model_name,
                "client": ClientKind.RAW.value if opts.client is ClientKind.RAW else "aiohttp",
            },
        )
        specs = found.specs
        return HttpSession(
            opts, codec, client, loop, specs.inputs, specs.outputs, description, found
        )


@dataclass(frozen=True)
class Discovery:
    """What the endpoint said of the model: its specs (and where they came from), its version
    and platform, and whether a local file was given."""

    specs: ChosenSpecs
    version: str | None
    platform: str | None
    local_file: bool


async def _metadata(client: ClientBase, codec: Codec, opts: HttpOptions) -> tuple[Specs, bytes]:
    """Readiness, then the model's metadata (specs and the raw document)."""
    ready = codec.ready_path()
    if opts.check_ready and ready is not None:
        status, _, _ = await client.fetch(ready)
        if status in (401, 403):
            raise EndpointError(
                f"the endpoint refused the credentials (HTTP {status})",
                "check token_env/token_file and auth_header",
            )
        if status != 200:
            raise EndpointError(
                f"the endpoint is not ready: GET {ready} returned HTTP {status}",
                "wait for the server to load its models, or pass --opt check_ready=false",
            )
    meta = codec.metadata_path()
    if meta is None:
        return ((), ()), b""
    status, body, _ = await client.fetch(meta)
    if status == 404:  # a usage error: the preflight finds it before anything runs
        raise UnknownModelError(
            f"the endpoint does not serve the model asked for (GET {meta}: HTTP 404"
            + _server_says(client, body)
            + ")",
            "pass --opt model_name=NAME (or -m NAME) with a model the server has",
        )
    if status in (401, 403):
        raise EndpointError(
            f"the endpoint refused the credentials (HTTP {status})",
            "check token_env/token_file and auth_header",
        )
    if status != 200:
        raise EndpointError(f"GET {meta} returned HTTP {status}", "check the endpoint's logs")
    try:
        return codec.parse_metadata(body), body
    except CodecError as exc:
        raise EndpointError(
            f"cannot read the model metadata: {exc}",
            "check --opt protocol=, or give --opt inputs=NAME:DTYPE:SHAPE",
        ) from None


def _server_says(client: ClientBase, body: bytes) -> str:
    """``; the server says: ...`` from a JSON ``{"error": ...}`` answer (scrubbed, cut short;
    ours names the models it serves), else nothing."""
    import json

    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, str) or not error.strip():
        return ""
    text = client.auth.excerpt(" ".join(error.split()).encode(), 160)
    return f"; the server says: {text}"


def discover(
    loop: LoopThread, client: ClientBase, codec: Codec, opts: HttpOptions, model: Path, name: str
) -> Discovery:
    """The model's specs by :func:`~tippingpoint.backends.remote.choose_specs`: the server's
    metadata, else the local file, else the ``inputs`` option."""
    meta, body = loop.run(_metadata(client, codec, opts), SETUP_TIMEOUT_S)
    has_metadata = codec.metadata_path() is not None
    option = parse_input_specs(opts.inputs) if opts.inputs else ()
    local = local_specs(Path(model)) if str(model) else None
    chosen = choose_specs(
        name,
        meta if has_metadata else None,
        local,
        option,
        local_path=Path(model),
        has_metadata=has_metadata,
    )
    version, platform_name = codec.model_info(body) if has_metadata else (None, None)
    return Discovery(chosen, version or opts.model_version, platform_name, Path(model).is_file())
