"""The ``grpc`` backend: a model behind a KServe v2 gRPC endpoint (Triton's and KServe's gRPC
port, MLServer's, ``tippingpoint serve --grpc-port``), as a
:class:`~tippingpoint.backends.network.NetworkSession`.

``--endpoint grpc://HOST:PORT`` (``grpcs://`` for TLS) runs it. The session owns an event loop
on a background thread and one ``grpc.aio`` channel on it; a request is serialised once (raw
tensor contents) and sent as bytes through a unary call without serialisers, so the timed part
is the RPC itself. A failed call is classified by its status (``timeout``, ``connection``,
``grpc-invalid-argument``, ...), a reply that does not decode is ``undecodable``; the
reference server's ``server-timing`` trailer gives the server time. Credentials are sent as
call metadata (``authorization: Bearer ...`` or the header named by ``auth_header``).

Usage::

    with GrpcBackend().load(Path("add"), {"endpoint": "grpc://127.0.0.1:8001"}) as session:
        outputs = session.bind(feeds)()
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from tippingpoint.backends.base import SessionBase
from tippingpoint.backends.grpc import tensors
from tippingpoint.backends.grpc.proto import M, method_path
from tippingpoint.backends.http.auth import (
    AuthConfig,
    AuthKind,
    Endpoint,
    load_secret,
    parse_endpoint,
)
from tippingpoint.backends.http.backend import (
    BIND_BACKOFF_S,
    BIND_TRIES,
    SETUP_TIMEOUT_S,
    LoopThread,
)
from tippingpoint.backends.http.client import (
    EndpointError,
    ErrorKind,
    checked_connect_to,
    parse_connect_to,
    parse_server_timing,
)
from tippingpoint.backends.http.kserve import CodecError, NamedTensor
from tippingpoint.backends.http.protocols import parse_input_specs
from tippingpoint.backends.network import Completion, NetworkInfo, NetworkLimits, RequestFn
from tippingpoint.backends.options import parse_options
from tippingpoint.backends.remote import ChosenSpecs, choose_specs, local_specs
from tippingpoint.core.errors import (
    InferenceError,
    InvalidOptionError,
    RuntimeNotInstalledError,
    UnknownModelError,
)
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import RemoteModel
from tippingpoint.core.types import (
    Availability,
    BackendDescription,
    Device,
    OptionValue,
)

if TYPE_CHECKING:
    import grpc.aio

T = TypeVar("T")
INSTALL_HINT = "pip install 'tippingpoint[grpc]'"
PLACEHOLDER_ENDPOINT = "grpc://127.0.0.1:1"
PROTOCOL = "kserve-v2-grpc"
"""The wire protocol as the report records it."""
SCHEMES = ("grpc", "grpcs")
FRAME_BYTES = 5
"""The length-prefixed message header of every gRPC message (HTTP/2 framing not counted)."""
RETRYABLE = frozenset({ErrorKind.TIMEOUT.value, ErrorKind.CONNECTION.value})
UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


class GrpcOptions(BaseModel):
    """Options of the gRPC backend; every one is recorded in the report (never a secret)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str = Field(description="grpc://HOST:PORT, or grpcs:// for TLS", repr=False)
    model_name: str | None = Field(default=None, description="default: the model file's stem")
    model_version: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=600)
    max_concurrent: int = Field(
        default=256, ge=1, le=65536, description="calls in flight on the channel at once"
    )
    max_inflight: int = Field(default=4096, ge=1, le=1_000_000)
    retries: int = Field(default=0, ge=0, le=10)
    tls_ca: str | None = Field(
        default=None, description="grpcs://: PEM file of the server's certificate or its CA"
    )
    tls_verify: bool = True
    token_env: str | None = Field(default=None, description="environment variable with the token")
    token_file: str | None = Field(default=None, description="file whose first line is the token")
    auth_header: str | None = Field(
        default=None, description="send the token in this metadata key instead of a bearer token"
    )
    server_timing_metric: str = "total"
    check_ready: bool = True
    inputs: str = Field(
        default="",
        description="input specs NAME:DTYPE:1x16,... (FP32 or float32) where neither the "
        "server's metadata nor a local file gives them",
    )
    latency_bound_ms: float | None = Field(
        default=None, gt=0, description="server scenario: find the peak rate meeting this p99"
    )
    connect_to: Annotated[str | None, AfterValidator(checked_connect_to)] = Field(
        default=None,
        description="HOST:PORT to open the channel's connection to instead of the URL's (curl "
        "--connect-to): TLS keeps the URL's host name for the certificate check, the calls "
        "its :authority (run --network points grpcs:// endpoints at the shaper this way)",
    )

    @field_validator("endpoint")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("grpc://", "grpcs://")):
            raise ValueError("must start with grpc:// or grpcs://")
        return v

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, v: str) -> str:
        parse_input_specs(v)  # a ValueError names the item and the fix
        return v

    def recorded(self, endpoint: Endpoint) -> dict[str, OptionValue]:
        """The options as the report shows them: the endpoint without credentials."""
        data = self.model_dump(mode="json")
        data["endpoint"] = endpoint.base_url
        return data


def _auth(opts: GrpcOptions, endpoint: Endpoint) -> AuthConfig:
    """The credential sent as call metadata; user info and a query, which gRPC has no place
    for, are refused."""
    if endpoint.userinfo is not None or endpoint.query is not None:
        raise InvalidOptionError(
            f"a gRPC endpoint takes no user info or query ({endpoint.base_url}): gRPC has neither",
            "send a token with --opt grpc.token_env=VAR (or token_file=PATH)",
        )
    if opts.token_env is None and opts.token_file is None:
        if opts.auth_header is not None:
            raise InvalidOptionError(
                "auth_header is set but no token source is given",
                "add token_env=VARIABLE or token_file=PATH",
            )
        return AuthConfig()
    secret = load_secret(opts.token_env, opts.token_file)
    if opts.auth_header:
        return AuthConfig(AuthKind.HEADER, secret, opts.auth_header.lower())
    return AuthConfig(AuthKind.BEARER, secret)


def _metadata(auth: AuthConfig) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying the credential (gRPC keys are lower-case)."""
    return tuple((k.lower(), v) for k, v in auth.headers().items())


def _kind(code: Any) -> str:
    """The error kind of a gRPC status code."""
    import grpc

    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return ErrorKind.TIMEOUT.value
    if code is grpc.StatusCode.UNAVAILABLE:
        return ErrorKind.CONNECTION.value
    return "grpc-" + str(code.name).lower().replace("_", "-")


@dataclass(frozen=True)
class GrpcSettings:
    """How the channel connects and times its calls."""

    target: str
    tls: bool
    tls_ca: bytes | None
    timeout_s: float
    connect_timeout_s: float
    max_concurrent: int
    retries: int
    server_timing_metric: str
    connect_to: str | None = None
    """HOST:PORT the channel connects to; ``target`` stays the name TLS and :authority use."""


class GrpcClient:
    """One ``grpc.aio`` channel; create it and use it on the same running event loop."""

    def __init__(self, settings: GrpcSettings, auth: AuthConfig) -> None:
        self.settings = settings
        self.auth = auth
        self.metadata = _metadata(auth)
        self._channel: grpc.aio.Channel | None = None
        self._infer: Callable[..., Any] | None = None
        self._slots: asyncio.Semaphore | None = None

    async def start(self) -> None:
        """Open the channel and wait until it is connected (an EndpointError otherwise)."""
        import grpc
        import grpc.aio

        s = self.settings
        address = s.target
        options: list[tuple[str, int | str]] = list(UNLIMITED)
        if s.connect_to is not None:  # connect there, name the URL's host (curl --connect-to)
            address = s.connect_to
            options.append(("grpc.default_authority", s.target))
            if s.tls:
                options.append(("grpc.ssl_target_name_override", s.target.rsplit(":", 1)[0]))
        if s.tls:
            creds = grpc.ssl_channel_credentials(root_certificates=s.tls_ca)
            self._channel = grpc.aio.secure_channel(address, creds, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(address, options=options)
        self._slots = asyncio.Semaphore(s.max_concurrent)
        # bytes in, bytes out: the request is serialised once, the reply decoded after timing
        self._infer = self._channel.unary_unary(
            method_path("ModelInfer"), request_serializer=None, response_deserializer=None
        )
        try:
            await asyncio.wait_for(self._channel.channel_ready(), s.connect_timeout_s)
        except TimeoutError:
            raise EndpointError(
                f"cannot reach {self.shown}: not connected within {s.connect_timeout_s:g} s",
                "check --endpoint, that the server is running, and TLS settings (tls_ca)",
            ) from None

    @property
    def shown(self) -> str:
        """The endpoint as printable."""
        return ("grpcs://" if self.settings.tls else "grpc://") + self.settings.target

    async def close(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None

    async def call(self, method: str, request: Any, response: Any) -> Any:
        """A setup RPC (readiness, metadata); failures are EndpointErrors naming the fix."""
        import grpc

        assert self._channel is not None, "start() first"
        stub = self._channel.unary_unary(
            method_path(method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )
        try:
            return await stub(request, timeout=self.settings.timeout_s, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                raise EndpointError(
                    f"the endpoint refused the credentials ({code.name})",
                    "check token_env/token_file and auth_header",
                ) from None
            if code is grpc.StatusCode.NOT_FOUND:  # a usage error, found before anything runs
                details = self.auth.scrub(" ".join((exc.details() or "").split()))
                details = self.auth.scrub(details[:160])  # redacted before and after the cut
                says = f"; the server says: {details}" if details else ""
                raise UnknownModelError(
                    f"the endpoint does not serve the model asked for ({method}: NOT_FOUND{says})",
                    "pass --opt model_name=NAME (or -m NAME) with a model the server has",
                ) from None
            raise EndpointError(
                self.auth.scrub(f"{method} on {self.shown} failed: {code.name}"),
                "check --endpoint and the server's logs",
            ) from None

    async def send(self, data: bytes) -> tuple[Completion, bytes]:
        """Send one serialised request (retrying retryable failures when enabled); never raises
        for a failed request. Returns the completion and the reply (empty on failure)."""
        import grpc

        start = time.perf_counter_ns()
        slots, infer = self._slots, self._infer
        assert slots is not None and infer is not None, "start() first"
        s = self.settings
        retries = 0
        sent = len(data) + FRAME_BYTES + sum(len(k) + len(v) for k, v in self.metadata)
        async with slots:
            while True:
                server_ns = -1
                try:
                    call = infer(data, timeout=s.timeout_s, metadata=self.metadata)
                    reply: bytes = await call
                    end = time.perf_counter_ns()
                    for key, value in await call.trailing_metadata() or ():
                        if key == "server-timing" and isinstance(value, str):
                            server_ns = parse_server_timing(value, s.server_timing_metric)
                    c = Completion(
                        start, end, None, sent, len(reply) + FRAME_BYTES, server_ns, retries, 0
                    )
                    return c, reply
                except grpc.aio.AioRpcError as exc:
                    end = time.perf_counter_ns()
                    code = exc.code()
                    error = _kind(code)
                    c = Completion(start, end, error, sent, 0, -1, retries, int(code.value[0]))
                if error not in RETRYABLE or retries >= s.retries:
                    return c, b""
                retries += 1


@dataclass(frozen=True)
class GrpcDiscovery:
    """What the endpoint said of the model."""

    specs: ChosenSpecs
    version: str | None
    platform: str | None
    local_file: bool


class GrpcSession(SessionBase):
    """A remote model over gRPC: specs by the server's metadata (else a local file, else the
    ``inputs`` option), requests through one channel on the session's loop."""

    def __init__(
        self,
        opts: GrpcOptions,
        endpoint: Endpoint,
        client: GrpcClient,
        loop: LoopThread,
        found: GrpcDiscovery,
        description: BackendDescription,
    ) -> None:
        super().__init__(found.specs.inputs, found.specs.outputs, description)
        self.options = opts
        self.endpoint = endpoint
        self.client = client
        self.loop_thread = loop
        self.discovery = found
        self.model_name = str(description.options["model_name"])
        self._closed = False

    @property
    def auth(self) -> AuthConfig:
        """The credential configuration (its secret never prints)."""
        return self.client.auth

    def encode(self, feeds: Sequence[np.ndarray]) -> bytes:
        """One batch as a serialised request (encoding is not timed)."""
        if len(feeds) != len(self._inputs):
            raise InferenceError(
                f"expected {len(self._inputs)} input arrays, got {len(feeds)}",
                "give one array per model input",
            )
        try:
            named = [NamedTensor(s.name, a) for s, a in zip(self._inputs, feeds, strict=True)]
            return tensors.encode_request(self.model_name, self.options.model_version, named)
        except CodecError as exc:
            raise InferenceError(f"cannot encode the request: {exc}", "check the inputs") from None

    def _outputs_of(self, reply: bytes) -> list[np.ndarray]:
        got = {t.name: t.array for t in tensors.decode_response(reply)}
        names = [s.name for s in self._outputs]
        if names and all(n in got for n in names):
            return [got[n] for n in names]
        return list(got.values())

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """A blocking call: send the request, decode the outputs; failures raise InferenceError
        naming the kind of failure."""
        data = self.encode(feeds)
        budget = self.options.timeout_s * (self.options.retries + 1) + 5

        def call() -> Sequence[np.ndarray]:
            for attempt in range(1, BIND_TRIES + 1):
                c, reply = self.loop_thread.run(self.client.send(data), budget)
                if c.error is None or c.error not in RETRYABLE or attempt == BIND_TRIES:
                    break
                time.sleep(BIND_BACKOFF_S * attempt)  # a server that recovers is not a failed run
            if c.error is not None:
                raise InferenceError(
                    f"request to {self.client.shown} failed: {c.error}",
                    "check the endpoint's logs and the inputs",
                )
            try:
                return self._outputs_of(reply)
            except CodecError as exc:
                raise InferenceError(
                    self.auth.scrub(f"cannot decode the response: {exc}"),
                    "check that the endpoint speaks KServe v2 gRPC",
                ) from None

        return call

    def request_fn(self, kind: ScenarioKind, feeds: Sequence[np.ndarray]) -> RequestFn:
        """Encode ``feeds`` once; the function sends it on the session's loop and decodes each
        successful reply after timing it (one that does not decode is ``undecodable``)."""
        data = self.encode(feeds)
        send = self.client.send
        decode = tensors.decode_response

        async def fn() -> Completion:
            c, reply = await send(data)
            if c.error is None:
                try:
                    decode(reply)
                except CodecError:
                    return c._replace(error=ErrorKind.UNDECODABLE.value)
            return c

        return fn

    def run_async(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` as a task on the session's loop; Ctrl-C cancels it and returns what it
        returns then."""
        return self.loop_thread.run_interruptible(coro, timeout)

    @property
    def limits(self) -> NetworkLimits:
        """Timeout and retries per call, the in-flight cap and the latency bound."""
        o = self.options
        return NetworkLimits(o.timeout_s, o.retries, o.max_inflight, o.latency_bound_ms)

    def network_info(self) -> NetworkInfo:
        """``kserve-v2-grpc``, the endpoint without credentials, TLS and the auth scheme."""
        return NetworkInfo(
            protocol=PROTOCOL,
            endpoint=self.endpoint.base_url,
            tls_verify=True if self.client.settings.tls else None,
            auth=self.auth.describe(),
        )

    def remote_model(self) -> RemoteModel:
        """The model as the endpoint states it."""
        found = self.discovery
        return RemoteModel(
            name=self.model_name,
            version=found.version,
            platform=found.platform,
            endpoint=self.endpoint.base_url,
            protocol=PROTOCOL,
            specs_from=found.specs.source,
            local_file=found.local_file,
            warning=found.specs.warning,
        )

    def close(self) -> None:
        """Close the channel and stop the event loop."""
        if self._closed:
            return
        self._closed = True
        try:
            self.loop_thread.run(self.client.close(), 10)
        finally:
            self.loop_thread.stop()


async def _discover_metadata(client: GrpcClient, name: str, opts: GrpcOptions) -> Any:
    if opts.check_ready:
        ready = await client.call("ServerReady", M.ServerReadyRequest(), M.ServerReadyResponse)
        if not ready.ready:
            raise EndpointError(
                f"the endpoint {client.shown} is not ready",
                "wait for the server to load its models, or pass --opt check_ready=false",
            )
    request = M.ModelMetadataRequest(name=name, version=opts.model_version or "")
    return await client.call("ModelMetadata", request, M.ModelMetadataResponse)


class GrpcBackend:
    """A model served over KServe v2 gRPC."""

    name = "grpc"
    formats: tuple[str, ...] = (".onnx", ".tflite", ".pt2", ".pt", "")
    runtime = "grpcio"
    network = True
    """Its sessions are network sessions; the model file is optional (the endpoint has it)."""

    def availability(self) -> Availability:
        """Installed when grpcio is importable."""
        installed = importlib.util.find_spec("grpc") is not None
        try:
            ver: str | None = version("grpcio")
        except PackageNotFoundError:
            ver = None
        return Availability(
            installed=installed, runtime=self.runtime, version=ver, install_hint=INSTALL_HINT
        )

    def validate_options(self, options: Mapping[str, OptionValue]) -> None:
        """Parse ``options`` without connecting; InvalidOptionError when one is bad."""
        opts = parse_options(GrpcOptions, {"endpoint": PLACEHOLDER_ENDPOINT, **options}, self.name)
        if "endpoint" in options:
            _auth_checked(opts)

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> GrpcSession:
        """Connect, check readiness, and read the model's metadata."""
        if "endpoint" not in options:
            raise InvalidOptionError(
                "the grpc backend needs an endpoint", "pass --endpoint grpc://HOST:PORT"
            )
        opts: GrpcOptions = parse_options(GrpcOptions, options, self.name)
        endpoint, auth = _auth_checked(opts)
        try:
            import grpc
        except ImportError:
            raise RuntimeNotInstalledError("grpcio is not installed", INSTALL_HINT) from None
        ca = None
        if opts.tls_ca is not None:
            try:
                ca = Path(opts.tls_ca).expanduser().read_bytes()
            except OSError:
                raise InvalidOptionError(
                    f"cannot read the TLS CA file {opts.tls_ca}", "check --opt tls_ca=PATH"
                ) from None
        host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        tls = endpoint.scheme == "grpcs"
        settings = GrpcSettings(
            target=f"{host}:{endpoint.port or (443 if tls else 8001)}",
            tls=tls,
            tls_ca=ca,
            timeout_s=opts.timeout_s,
            connect_timeout_s=opts.connect_timeout_s,
            max_concurrent=opts.max_concurrent,
            retries=opts.retries,
            server_timing_metric=opts.server_timing_metric,
            connect_to=_bracketed(*parse_connect_to(opts.connect_to)) if opts.connect_to else None,
        )
        model_name = opts.model_name or Path(model).stem
        client = GrpcClient(settings, auth)
        loop = LoopThread()
        try:
            loop.run(client.start(), SETUP_TIMEOUT_S)
            meta = loop.run(_discover_metadata(client, model_name, opts), SETUP_TIMEOUT_S)
            try:
                specs = tensors.metadata_specs(meta)
            except CodecError as exc:
                raise EndpointError(
                    f"cannot read the model metadata: {exc}",
                    "give --opt inputs=NAME:DTYPE:SHAPE",
                ) from None
            chosen = choose_specs(
                model_name,
                specs,
                local_specs(Path(model)) if str(model) else None,
                parse_input_specs(opts.inputs) if opts.inputs else (),
                local_path=Path(model),
            )
        except BaseException:
            loop.run(client.close(), 10)
            loop.stop()
            raise
        found = GrpcDiscovery(
            chosen,
            (meta.versions[0] if meta.versions else None) or opts.model_version,
            meta.platform or None,
            Path(model).is_file(),
        )
        description = BackendDescription(
            name=self.name,
            runtime=self.runtime,
            runtime_version=grpc.__version__,
            device=Device.REMOTE,
            device_name=endpoint.base_url,
            options={**opts.recorded(endpoint), "model_name": model_name},
        )
        return GrpcSession(opts, endpoint, client, loop, found, description)


def _bracketed(host: str, port: int) -> str:
    """``HOST:PORT`` as gRPC targets write it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _auth_checked(opts: GrpcOptions) -> tuple[Endpoint, AuthConfig]:
    """The endpoint parsed and its credential, with gRPC's TLS limits checked."""
    endpoint = parse_endpoint(opts.endpoint, SCHEMES)
    if not opts.tls_verify:
        raise InvalidOptionError(
            "gRPC cannot turn TLS verification off",
            "pass --opt grpc.tls_ca=PATH with the server's certificate (or its CA)",
        )
    if opts.tls_ca is not None and endpoint.scheme != "grpcs":
        raise InvalidOptionError("tls_ca is set on a plain grpc:// endpoint", "use grpcs://")
    return endpoint, _auth(opts, endpoint)
