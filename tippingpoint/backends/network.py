"""The network-session interface: sessions whose inference crosses a network.

A network session is a :class:`~tippingpoint.backends.base.Session` that also supplies a
*transport*: a coroutine function that sends one prepared request and reports its
:class:`Completion`. Everything that decides *when* requests are sent (warm-up, closed loops,
the open loop's arrival schedule, the peak-rate search, concurrency sweeps, stop rules) lives in
the harness (:mod:`tippingpoint.harness.network`), which drives any session that satisfies
:class:`NetworkSession`: the HTTP/gRPC client sessions today, split, hybrid and generative
sessions as they come. The session never times a run, only one request.

Usage (what the harness does)::

    if isinstance(session, NetworkSession):
        send = session.request_fn(ScenarioKind.SERVER, feeds)   # encodes once, not timed
        completion = session.run_async(send(), timeout=10.0)    # one request on its loop
        info = session.network_info()                           # for the report's network section
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from tippingpoint.backends.base import Session

if TYPE_CHECKING:
    import numpy as np

    from tippingpoint.core.kinds import ScenarioKind
    from tippingpoint.core.schema import RemoteModel

T = TypeVar("T")


class RouteRecord(NamedTuple):
    """How a routing session (the hybrid backend) answered one request: the route taken
    (``local``, ``cloud`` or ``cache``), the policy's reason, the policy's own time in ns
    (deciding, reviewing and the cache lookup; never the inference), whether a failed cloud
    request was answered locally instead (``fallback``) and that failure's kind."""

    route: str
    reason: str
    policy_ns: int
    fallback: bool = False
    cloud_error: str | None = None


class Completion(NamedTuple):
    """One finished request as the transport reports it.

    ``start_ns``/``end_ns`` are ``perf_counter_ns`` readings right before the request was handed
    to the client and right after its response was read (and decoded); ``error`` is None for a
    success, else the failure's kind (``timeout``, ``http-500``, ``undecodable``, ...).
    ``server_ns`` is the server-reported processing time, or -1 when the server gave none;
    ``status`` the protocol's status code (HTTP, or gRPC's code), 0 when no response arrived.
    """

    start_ns: int
    end_ns: int
    error: str | None
    bytes_sent: int
    bytes_received: int
    server_ns: int
    retries: int
    status: int = 0
    route: RouteRecord | None = None
    """A routing session's decision for this request; None for plain network sessions."""


RequestFn = Callable[[], Awaitable[Completion]]
"""Sends one request to completion; never raises for a failed request (reports it instead)."""


@dataclass(frozen=True)
class NetworkLimits:
    """What bounds a load against this session: per-request timeout (all attempts included),
    the most requests in flight, and the latency bound a server scenario searches under."""

    timeout_s: float
    retries: int
    max_inflight: int
    latency_bound_ms: float | None = None

    @property
    def request_budget_s(self) -> float:
        """The longest one request may take, retries included."""
        return self.timeout_s * (self.retries + 1)


@dataclass(frozen=True)
class NetworkInfo:
    """How the session reaches its endpoint, for the report (never a secret)."""

    protocol: str
    """Wire protocol as recorded, e.g. ``kserve-v2+binary``."""
    endpoint: str
    """The endpoint as printable: no user info, no query, no credentials."""
    tls_verify: bool | None
    """Whether the TLS certificate is verified; None on plain-text transports."""
    auth: str | None
    """The credential scheme as printable (``bearer``, ``header:X-Api-Key``), never the
    secret; None when no credential is sent."""


@runtime_checkable
class NetworkSession(Session, Protocol):
    """A session whose requests the harness schedules; it supplies the transport only."""

    def request_fn(self, kind: ScenarioKind, feeds: Sequence[np.ndarray]) -> RequestFn:
        """Encode ``feeds`` once (untimed) for scenario ``kind`` and return the function that
        sends that request on the session's event loop. The session may choose a client by
        ``kind`` (e.g. a cheaper one for open-loop runs) and says so in :meth:`describe`."""
        ...

    def run_async(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the session's event loop and wait for it. On Ctrl-C the task is
        cancelled and what it returns then is returned (the load generator returns its partial
        run when cancelled); a coroutine that re-raises the cancellation raises
        KeyboardInterrupt here."""
        ...

    @property
    def limits(self) -> NetworkLimits:
        """Timeouts, retries and in-flight cap in force."""
        ...

    def network_info(self) -> NetworkInfo:
        """Protocol, printable endpoint, TLS and auth, for the report."""
        ...


@runtime_checkable
class RemoteModelSession(Protocol):
    """A session whose model lives on an endpoint and which can say what the endpoint states
    of it (name, version, platform, where its specs came from); the report's model section
    records it, and a model with no local file is named by it."""

    def remote_model(self) -> RemoteModel:
        """The model as the endpoint states it."""
        ...
