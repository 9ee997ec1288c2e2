"""The ``hybrid`` backend: a local backend and a remote endpoint behind one session, with a
pluggable routing policy (:mod:`tippingpoint.backends.hybrid.policy`), an optional fallback
(a failed cloud request is answered locally) and an optional result cache keyed by the
input's hash.

The session is a :class:`~tippingpoint.backends.network.NetworkSession`: the harness drives it
with its closed and open loops like the HTTP backend, and every completion carries a
:class:`~tippingpoint.backends.network.RouteRecord` (route, reason, the policy's own time,
fallback), which the harness turns into the report's ``hybrid`` section and the raw samples.
Local inferences run on a pool of ``local_workers`` threads (the local capacity); cloud
requests go through the HTTP backend's client on its event loop, which the session shares.

Options (``--opt KEY=VALUE``): the hybrid's own (:class:`HybridOptions`), the policy's (e.g.
``k`` for ``queue-depth``, ``threshold`` for ``confidence``), ``local_*`` for the local
backend (``local_intra_op_threads=1``) and ``cloud_*`` for the HTTP backend
(``cloud_timeout_s=2``).

Usage::

    backend = HybridBackend()
    opts = {"endpoint": "http://127.0.0.1:8000", "policy": "queue-depth", "k": 2}
    with backend.load(Path("mlp.onnx"), opts) as session:
        send = session.request_fn(ScenarioKind.SERVER, feeds)
        completion = session.run_async(send(), timeout=10.0)   # completion.route.reason
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tippingpoint.backends.base import Session, SessionBase
from tippingpoint.backends.http.backend import PLACEHOLDER_ENDPOINT, HttpBackend, HttpSession
from tippingpoint.backends.http.client import ClientBase, PreparedRequest
from tippingpoint.backends.http.kserve import CodecError
from tippingpoint.backends.http.protocols import HttpMethod
from tippingpoint.backends.hybrid.policy import (
    Decision,
    Policy,
    PolicyConfig,
    Route,
    RouterState,
    get_policy,
    make_policy,
)
from tippingpoint.backends.network import (
    Completion,
    NetworkInfo,
    NetworkLimits,
    RequestFn,
    RouteRecord,
)
from tippingpoint.backends.options import parse_options
from tippingpoint.core.errors import InferenceError, InvalidOptionError, ModelFileError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.types import Availability, BackendDescription, OptionValue

T = TypeVar("T")
LOCAL_PREFIX = "local_"
CLOUD_PREFIX = "cloud_"
LOCAL_ERROR = "local-error"
"""Error kind of a request whose local inference raised."""
PROBE_MIN_TIMEOUT_S = 0.2
"""The shortest an RTT probe may wait before it counts as failed."""


class HybridOptions(BaseModel):
    """The hybrid backend's own options; every one is recorded in the report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str = Field(description="the remote endpoint (KServe v2 over HTTP)", repr=False)
    policy: str = Field(default="always-local", description="routing policy (plugin name)")
    fallback: bool = Field(
        default=False, description="answer a failed or timed-out cloud request locally"
    )
    cache: bool = Field(
        default=False, description="answer repeated inputs from a cache keyed by their hash"
    )
    cache_size: int = Field(default=1024, ge=1, le=10_000_000, description="cached results")
    slo_ms: float | None = Field(
        default=None,
        gt=0.0,
        le=3_600_000.0,
        description="latency objective: the deadline policy's, and the deadline-miss rate's",
    )
    local_backend: str = Field(default="onnxruntime", description="the local backend")
    local_workers: int = Field(
        default=1, ge=1, le=256, description="local inferences that can run at once"
    )
    ewma_alpha: float = Field(
        default=0.2,
        gt=0.0,
        le=1.0,
        description="weight of the newest local latency in its EWMA (the deadline policy's "
        "prediction)",
    )


def split_options(
    options: Mapping[str, OptionValue],
) -> tuple[dict[str, OptionValue], dict[str, OptionValue], dict[str, OptionValue], dict[str, Any]]:
    """(hybrid, local, cloud, policy) options from the flat ``--opt`` mapping: the hybrid's
    own fields, then ``local_*`` and ``cloud_*`` (prefix removed), the rest the policy's."""
    fields = HybridOptions.model_fields
    own: dict[str, OptionValue] = {}
    local: dict[str, OptionValue] = {}
    cloud: dict[str, OptionValue] = {}
    policy: dict[str, Any] = {}
    for key, value in options.items():
        if key in fields:
            own[key] = value
        elif key.startswith(LOCAL_PREFIX):
            local[key.removeprefix(LOCAL_PREFIX)] = value
        elif key.startswith(CLOUD_PREFIX):
            cloud[key.removeprefix(CLOUD_PREFIX)] = value
        else:
            policy[key] = value
    return own, local, cloud, policy


def _check_policy_keys(name: str, policy_opts: Mapping[str, Any]) -> None:
    """An option neither the hybrid's nor the policy's: one line naming every valid one."""
    model = get_policy(name).options_model
    for key in policy_opts:
        if key not in model.model_fields:
            own = ", ".join(HybridOptions.model_fields)
            mine = ", ".join(model.model_fields) or "none"
            raise InvalidOptionError(
                f"unknown hybrid option '{key}' (policy '{name}')",
                f"hybrid options: {own}; policy '{name}' options: {mine}; local_* go to the "
                "local backend, cloud_* to the endpoint (http backend)",
            )


def input_key(feeds: Sequence[np.ndarray]) -> str:
    """The cache key of one batch: sha256 over each array's dtype, shape and bytes."""
    h = hashlib.sha256()
    for arr in feeds:
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class ResultCache:
    """Least-recently-used results by input key, with its lookups and hits."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[np.ndarray, ...]] = OrderedDict()
        self.lookups = 0
        self.hits = 0

    def get(self, key: str) -> tuple[np.ndarray, ...] | None:
        """The cached outputs of ``key`` (a hit), or None."""
        self.lookups += 1
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return found

    def put(self, key: str, outputs: Sequence[np.ndarray]) -> None:
        """Remember ``outputs`` for ``key``, evicting the least recently used."""
        self._items[key] = tuple(outputs)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class HybridSession(SessionBase):
    """A local session and a cloud session behind one routing policy."""

    def __init__(
        self,
        opts: HybridOptions,
        local: Session,
        cloud: HttpSession,
        policy: Policy,
        description: BackendDescription,
        probe_interval_s: float | None,
        probe_timeout_s: float,
    ) -> None:
        super().__init__(local.inputs, local.outputs, description)
        self.options = opts
        self.local = local
        self.cloud = cloud
        self.policy = policy
        self.state = RouterState(local_workers=opts.local_workers)
        self.cache = ResultCache(opts.cache_size) if opts.cache else None
        self._alpha = opts.ewma_alpha
        self._pool = ThreadPoolExecutor(opts.local_workers, thread_name_prefix="tp-hybrid-local")
        self._closed = False
        self._probe: Any = None
        if probe_interval_s is not None:
            self._probe = asyncio.run_coroutine_threadsafe(
                self._probe_loop(probe_interval_s, probe_timeout_s), cloud.loop_thread.loop
            )

    # -- the local side -------------------------------------------------------------------

    async def _run_local(
        self, call: Callable[[], Sequence[np.ndarray]]
    ) -> tuple[Sequence[np.ndarray] | None, str | None]:
        """One local inference on the pool; the EWMA of local latency learns from it."""
        loop = asyncio.get_running_loop()
        state = self.state
        state.local_inflight += 1
        t0 = time.perf_counter_ns()
        try:
            outputs = await loop.run_in_executor(self._pool, call)
        except Exception:  # the local runtime failed this request: counted, never raised
            return None, LOCAL_ERROR
        finally:
            state.local_inflight -= 1
        took = float(time.perf_counter_ns() - t0)
        ewma = state.local_ewma_ns
        state.local_ewma_ns = took if ewma is None else ewma + self._alpha * (took - ewma)
        return outputs, None

    # -- the cloud side -------------------------------------------------------------------

    async def _send_cloud(
        self, client: ClientBase, req: PreparedRequest
    ) -> tuple[Completion, Sequence[np.ndarray] | None]:
        """One cloud request, decoded (an undecodable reply is a failure)."""
        c, body, headers = await client.send(req)
        if c.error is not None:
            return c, None
        try:
            return c, self.cloud.codec.decode(body, headers, self.cloud.outputs)
        except CodecError:
            return c._replace(error="undecodable"), None

    async def _probe_loop(self, interval_s: float, timeout_s: float) -> None:
        """Probe the endpoint's RTT (its readiness path) every ``interval_s`` for the policy."""
        client = self.cloud.client
        path = self.cloud.codec.ready_path() or self.cloud.codec.infer_path()
        req = client.prepare(HttpMethod.GET, path, b"", {})
        state = self.state
        while True:
            t0 = time.perf_counter_ns()
            try:
                c, _, _ = await asyncio.wait_for(client.send(req), timeout_s)
                failed = c.error is not None
            except asyncio.TimeoutError:
                failed = True
            state.probe_failed = failed
            state.rtt_ns = None if failed else float(time.perf_counter_ns() - t0)
            await asyncio.sleep(interval_s)

    # -- routing --------------------------------------------------------------------------

    async def answer(
        self,
        feeds: Sequence[np.ndarray],
        local_call: Callable[[], Sequence[np.ndarray]],
        client: ClientBase,
        req: PreparedRequest,
    ) -> tuple[Completion, Sequence[np.ndarray] | None]:
        """Route one request and answer it: the completion (with its route record) and the
        outputs (None when it failed). Never raises for a failed request."""
        clock = time.perf_counter_ns
        start = clock()
        policy_ns = 0
        key = None
        cache = self.cache
        if cache is not None:
            key = input_key(feeds)
            hit = cache.get(key)
            if hit is not None:
                end = clock()
                rec = RouteRecord(Route.CACHE.value, "cache-hit", end - start)
                return Completion(start, end, None, 0, 0, -1, 0, 0, rec), hit
            policy_ns = clock() - start  # the hash and the missed lookup count as overhead
        t0 = clock()
        decision: Decision = self.policy.decide(self.state)
        self.state.decisions += 1
        policy_ns += clock() - t0
        outputs: Sequence[np.ndarray] | None = None
        error: str | None = None
        route = decision.route
        reason = decision.reason
        if route is Route.LOCAL:
            outputs, error = await self._run_local(local_call)
            if decision.review and outputs is not None:
                t1 = clock()
                verdict = self.policy.review(outputs)
                policy_ns += clock() - t1
                reason = verdict.reason
                if verdict.route is Route.CLOUD:
                    route = Route.CLOUD
            if route is Route.LOCAL:
                end = clock()
                rec = RouteRecord(Route.LOCAL.value, reason, policy_ns)
                if outputs is not None and cache is not None and key is not None:
                    cache.put(key, outputs)
                return Completion(start, end, error, 0, 0, -1, 0, 0, rec), outputs
        c, outputs = await self._send_cloud(client, req)
        if c.error is not None and self.options.fallback:
            outputs, error = await self._run_local(local_call)
            end = clock()
            rec = RouteRecord(Route.LOCAL.value, reason, policy_ns, True, c.error)
            done = Completion(
                start, end, error, c.bytes_sent, c.bytes_received, -1, c.retries, c.status, rec
            )
        else:
            end = clock()
            rec = RouteRecord(Route.CLOUD.value, reason, policy_ns, False, c.error)
            done = c._replace(start_ns=start, end_ns=end, route=rec)
        if outputs is not None and cache is not None and key is not None:
            cache.put(key, outputs)
        return done, outputs

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """A blocking call routed like every request (first inference, accuracy passes); a
        failed request raises InferenceError naming its kind."""
        local_call = self.local.bind(feeds)
        client = self.cloud.client
        req = self.cloud.prepare(feeds, client)
        budget = self.cloud.limits.request_budget_s + 60

        def call() -> Sequence[np.ndarray]:
            c, outputs = self.cloud.run(self.answer(feeds, local_call, client, req), budget)
            if outputs is None:
                where = c.route.route if c.route is not None else "?"
                raise InferenceError(
                    f"hybrid request failed ({where}): {c.error}",
                    "check the endpoint, or pass --opt fallback=true to answer locally",
                )
            return outputs

        return call

    def request_fn(self, kind: ScenarioKind, feeds: Sequence[np.ndarray]) -> RequestFn:
        """Bind the local side and encode the cloud request once (untimed); each call routes
        and answers one request on the session's loop."""
        local_call = self.local.bind(feeds)
        client = self.cloud.client_for(kind)
        req = self.cloud.prepare(feeds, client)
        answer = self.answer

        async def fn() -> Completion:
            c, _ = await answer(feeds, local_call, client, req)
            return c

        return fn

    def run_async(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the cloud session's loop (the session's loop)."""
        return self.cloud.run_async(coro, timeout)

    @property
    def limits(self) -> NetworkLimits:
        """The cloud side's limits (a local answer is never slower than its queue)."""
        return self.cloud.limits

    def network_info(self) -> NetworkInfo:
        """The cloud side's protocol and endpoint."""
        return self.cloud.network_info()

    def close(self) -> None:
        """Stop the probe, the local pool, both sessions."""
        if self._closed:
            return
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
        self._pool.shutdown(wait=True)
        try:
            self.local.close()
        finally:
            self.cloud.close()


def _policy_config(opts: HybridOptions) -> PolicyConfig:
    return PolicyConfig(slo_ms=opts.slo_ms)


class HybridBackend:
    """A local backend and a remote endpoint with a routing policy between them."""

    name = "hybrid"
    formats: tuple[str, ...] = (".onnx", ".tflite", ".pt2", ".pt")
    runtime = "hybrid"
    network = True
    """Its sessions are network sessions (the harness's loops drive them); the local model
    file is required all the same."""

    def availability(self) -> Availability:
        """Installed when the HTTP backend is (the local backend is checked at load)."""
        http = HttpBackend().availability()
        return Availability(
            installed=http.installed,
            runtime=self.runtime,
            version=None,
            install_hint=http.install_hint,
        )

    def parse(
        self, options: Mapping[str, OptionValue], endpoint_required: bool
    ) -> tuple[HybridOptions, dict[str, OptionValue], dict[str, OptionValue], Policy]:
        """Validate every option (hybrid, policy, local, cloud) without loading anything."""
        own, local, cloud, policy_opts = split_options(options)
        if "endpoint" not in own:
            if endpoint_required:
                raise InvalidOptionError(
                    "the hybrid backend needs an endpoint",
                    "pass --endpoint http://HOST:PORT (or --opt endpoint=...)",
                )
            own["endpoint"] = PLACEHOLDER_ENDPOINT
        opts = parse_options(HybridOptions, own, self.name)
        _check_policy_keys(opts.policy, policy_opts)
        policy = make_policy(opts.policy, policy_opts, _policy_config(opts))
        from tippingpoint.backends.registry import get_backend

        local_cls = get_backend(opts.local_backend)
        if local_cls.network:
            raise InvalidOptionError(
                f"local_backend '{opts.local_backend}' is a network backend",
                "pass --opt local_backend=onnxruntime (or another local backend)",
            )
        local_cls().validate_options(local)
        cloud_all: dict[str, OptionValue] = {"endpoint": opts.endpoint, **cloud}
        HttpBackend().validate_options(cloud_all)
        return opts, local, cloud_all, policy

    def validate_options(self, options: Mapping[str, OptionValue]) -> None:
        """Parse every option without connecting; InvalidOptionError when one is bad."""
        self.parse(options, endpoint_required=False)

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> HybridSession:
        """Load the local model, connect to the endpoint, start the RTT probe if the policy
        needs one."""
        opts, local_opts, cloud_opts, policy = self.parse(options, endpoint_required=True)
        from tippingpoint.backends.registry import get_backend

        local_cls = get_backend(opts.local_backend)
        if not Path(model).is_file():
            raise ModelFileError(
                f"the hybrid backend needs a local model file, not {model}",
                "pass -m with a suite model or a model file the local backend loads",
            )
        if Path(model).suffix not in local_cls.formats:
            raise ModelFileError(
                f"local_backend {opts.local_backend} loads {', '.join(local_cls.formats)} "
                f"files, not {Path(model).name}",
                "pass a model of that format, or --opt local_backend= one that loads it",
            )
        local = local_cls().load(Path(model), local_opts)
        try:
            cloud = HttpBackend().load(Path(model), cloud_opts)
        except BaseException:
            local.close()
            raise
        local_desc = local.describe()
        policy_options = getattr(policy, "options", None)
        recorded: dict[str, OptionValue] = {
            **opts.model_dump(mode="json"),
            "endpoint": cloud.network_info().endpoint,
            "local_runtime": local_desc.runtime,
            "cloud_model_name": str(cloud.describe().options.get("model_name", "")),
        }
        if isinstance(policy_options, BaseModel):
            for k, v in policy_options.model_dump(mode="json").items():
                recorded[f"policy_{k}"] = v
        for k, v in local_desc.options.items():
            recorded[f"local_{k}"] = v
        description = BackendDescription(
            name=self.name,
            runtime=local_desc.runtime,
            runtime_version=local_desc.runtime_version,
            device=local_desc.device,
            device_name=local_desc.device_name,
            threads=local_desc.threads,
            providers=local_desc.providers,
            options=recorded,
        )
        interval = getattr(policy_options, "probe_interval_s", None) if policy.needs_probe else None
        rtt_max = getattr(policy_options, "rtt_max_ms", 50.0)
        probe_timeout = max(PROBE_MIN_TIMEOUT_S, 4 * float(rtt_max) / 1000)
        return HybridSession(
            opts,
            local,
            cloud,
            policy,
            description,
            float(interval) if interval is not None else None,
            probe_timeout,
        )
