"""Routing policies of the hybrid backend: the plugin interface and the built-in policies.

A policy decides, per request, whether the local backend or the remote endpoint answers. It
reads the router's :class:`RouterState` (local requests in flight, the EWMA of measured local
latency, the last RTT probe of the endpoint) and returns a :class:`Decision` naming the route
and the reason. A policy that judges the local *answer* (``confidence``) asks for a review: the
request runs locally first and :meth:`Policy.review` decides from its outputs whether to
offload it after all.

Policies are plugins, like backends: a class registered under the ``tippingpoint.policies``
entry-point group, with a ``name``, a frozen pydantic ``options_model`` (its own options, given
as ``--opt`` like the hybrid backend's; a bad one is a usage error before anything runs) and a
constructor taking the parsed options and the router's :class:`PolicyConfig`::

    [project.entry-points."tippingpoint.policies"]
    mypolicy = "mypkg.policy:MyPolicy"

Usage::

    policy = make_policy("queue-depth", {"k": 2}, PolicyConfig(slo_ms=None))
    decision = policy.decide(state)        # Decision(route=Route.CLOUD, reason="queue-full")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tippingpoint.backends.options import parse_options
from tippingpoint.core.errors import InvalidOptionError, RuntimeNotInstalledError
from tippingpoint.core.plugins import (
    PluginLoadError,
    broken_plugin_hint,
    load_entry_point,
    plugin_entry_points,
)
from tippingpoint.core.types import OptionValue

GROUP = "tippingpoint.policies"


class Route(str, Enum):
    """Who answered a request."""

    LOCAL = "local"
    CLOUD = "cloud"
    CACHE = "cache"
    """The result cache (keyed by the input's hash) answered; neither side ran."""


class Decision(NamedTuple):
    """A policy's verdict: the route, why, and whether the local answer is reviewed
    (run locally first; :meth:`Policy.review` may offload it after all)."""

    route: Route
    reason: str
    review: bool = False


@dataclass
class RouterState:
    """What the router knows when a request arrives (updated by the router only)."""

    local_inflight: int = 0
    """Local requests dispatched and not finished (queued in the local pool included)."""
    local_workers: int = 1
    """Local requests that can run at once (the local pool's threads)."""
    local_ewma_ns: float | None = None
    """EWMA of measured local latency (dispatch to answer, queueing included); None before the
    first local answer."""
    decisions: int = 0
    """Decisions made so far (the policy's own bookkeeping may use it)."""
    rtt_ns: float | None = None
    """The last RTT probe of the endpoint; None before the first probe or when it failed."""
    probe_failed: bool = False
    """The last RTT probe failed (connection refused, reset, timed out)."""


@dataclass(frozen=True)
class PolicyConfig:
    """Hybrid settings a policy may read besides its own options."""

    slo_ms: float | None = None
    """The latency objective of the hybrid run (deadline policy, deadline-miss rate)."""


@runtime_checkable
class Policy(Protocol):
    """A routing policy (an instance, built from its options)."""

    name: str
    needs_probe: bool
    """True when the router must probe the endpoint's RTT for this policy."""

    def decide(self, state: RouterState) -> Decision:
        """The route of the next request."""
        ...

    def review(self, outputs: Sequence[np.ndarray]) -> Decision:
        """After a reviewed local answer: keep it (``Route.LOCAL``) or offload."""
        ...


@runtime_checkable
class PolicyClass(Protocol):
    """What the ``tippingpoint.policies`` entry point names: a class with a name, an options
    model, and a constructor ``(options, config)``."""

    name: str
    options_model: type[BaseModel]

    def __call__(self, options: Any, config: PolicyConfig) -> Policy:
        """Build the policy."""
        ...


class _NoOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PolicyBase:
    """Defaults: no probe, a review keeps the local answer."""

    name: ClassVar[str]
    needs_probe: ClassVar[bool] = False
    options_model: ClassVar[type[BaseModel]] = _NoOptions

    def __init__(self, options: BaseModel, config: PolicyConfig) -> None:
        self.options = options
        self.config = config

    def review(self, outputs: Sequence[np.ndarray]) -> Decision:
        """Keep the local answer."""
        return Decision(Route.LOCAL, "local-answer")


class AlwaysLocal(PolicyBase):
    """Every request runs on the local backend (a baseline)."""

    name = "always-local"

    def decide(self, state: RouterState) -> Decision:
        """Local."""
        return Decision(Route.LOCAL, "always-local")


class AlwaysCloud(PolicyBase):
    """Every request goes to the endpoint (a baseline)."""

    name = "always-cloud"

    def decide(self, state: RouterState) -> Decision:
        """Cloud."""
        return Decision(Route.CLOUD, "always-cloud")


class ConfidenceMeasure(str, Enum):
    """How sure the local answer is."""

    MAX_SOFTMAX = "max-softmax"
    """The top class's probability; offload when below the threshold."""
    ENTROPY = "entropy"
    """The entropy of the class distribution over log(classes), in [0, 1]; offload when above
    the threshold."""


class ConfidenceOptions(BaseModel):
    """Options of the confidence policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="max-softmax: offload below it; entropy (normalised to [0,1]): above it",
    )
    measure: ConfidenceMeasure = ConfidenceMeasure.MAX_SOFTMAX
    output: int = Field(default=0, ge=0, description="index of the output holding the scores")


def class_probabilities(scores: np.ndarray) -> np.ndarray:
    """Rows of class probabilities from a [batch, classes] (or [classes]) output: used as is
    when the rows already are distributions (non-negative, summing to 1), else softmax."""
    s = np.asarray(scores, dtype=np.float64)
    s = s.reshape(1, -1) if s.ndim <= 1 else s.reshape(s.shape[0], -1)
    if s.min() >= 0.0 and np.allclose(s.sum(axis=1), 1.0, atol=1e-3):
        return s
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(z)
    p: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return p


def confidence(scores: np.ndarray, measure: ConfidenceMeasure) -> float:
    """The least confident row's max-softmax, or the most uncertain row's normalised entropy."""
    p = class_probabilities(scores)
    if measure is ConfidenceMeasure.MAX_SOFTMAX:
        return float(p.max(axis=1).min())
    k = p.shape[1]
    if k < 2:
        return 0.0
    h = -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1) / math.log(k)
    return float(h.max())


class Confidence(PolicyBase):
    """Answer locally; offload when the local answer is unsure."""

    name = "confidence"
    options_model = ConfidenceOptions

    def decide(self, state: RouterState) -> Decision:
        """Run locally, then review the answer."""
        return Decision(Route.LOCAL, "confidence-check", review=True)

    def review(self, outputs: Sequence[np.ndarray]) -> Decision:
        """Offload when the local answer's confidence is on the wrong side of the threshold."""
        opts = self.options
        assert isinstance(opts, ConfidenceOptions)
        if opts.output >= len(outputs):
            raise InvalidOptionError(
                f"confidence policy: output index {opts.output} but the model has "
                f"{len(outputs)} output(s)",
                f"pass --opt output=0..{len(outputs) - 1}",
            )
        value = confidence(outputs[opts.output], opts.measure)
        unsure = (
            value < opts.threshold
            if opts.measure is ConfidenceMeasure.MAX_SOFTMAX
            else value > opts.threshold
        )
        return (
            Decision(Route.CLOUD, "low-confidence")
            if unsure
            else Decision(Route.LOCAL, "confident")
        )


class QueueDepthOptions(BaseModel):
    """Options of the queue-depth policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(
        default=1,
        ge=1,
        le=100_000,
        description="offload when this request would put more than k local requests in flight",
    )


class QueueDepth(PolicyBase):
    """Answer locally until more than ``k`` local requests would be in flight."""

    name = "queue-depth"
    options_model = QueueDepthOptions

    def decide(self, state: RouterState) -> Decision:
        """Cloud once ``k`` local requests are in flight."""
        opts = self.options
        assert isinstance(opts, QueueDepthOptions)
        if state.local_inflight >= opts.k:
            return Decision(Route.CLOUD, "queue-full")
        return Decision(Route.LOCAL, "queue-ok")


class DeadlineOptions(BaseModel):
    """Options of the deadline policy (the SLO is the hybrid's ``slo_ms``, the EWMA's weight
    its ``ewma_alpha``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    explore_every: int = Field(
        default=20,
        ge=0,
        le=1_000_000,
        description="while offloading, run every n-th request locally to refresh the "
        "estimate (0: never)",
    )


class Deadline(PolicyBase):
    """Offload when the predicted local latency (the EWMA of measured local latency, scaled by
    the local queue) exceeds the SLO."""

    name = "deadline"
    options_model = DeadlineOptions

    def __init__(self, options: BaseModel, config: PolicyConfig) -> None:
        super().__init__(options, config)
        if config.slo_ms is None:
            raise InvalidOptionError(
                "the deadline policy needs a latency objective", "pass --opt slo_ms=MS"
            )
        self.slo_ns = config.slo_ms * 1e6
        self._offloaded = 0

    def decide(self, state: RouterState) -> Decision:
        """Local while the prediction meets the SLO (or before any local answer)."""
        opts = self.options
        assert isinstance(opts, DeadlineOptions)
        if state.local_ewma_ns is None:
            return Decision(Route.LOCAL, "no-estimate")
        waits = state.local_inflight // max(state.local_workers, 1)
        predicted = state.local_ewma_ns * (1 + waits)
        if predicted <= self.slo_ns:
            self._offloaded = 0
            return Decision(Route.LOCAL, "meets-slo")
        self._offloaded += 1
        if opts.explore_every and self._offloaded % opts.explore_every == 0:
            return Decision(Route.LOCAL, "explore")
        return Decision(Route.CLOUD, "predicted-miss")


class NetworkAwareOptions(BaseModel):
    """Options of the network-aware policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rtt_max_ms: float = Field(
        default=50.0, gt=0.0, le=60_000.0, description="offload while the probed RTT is below it"
    )
    probe_interval_s: float = Field(
        default=0.5, gt=0.0, le=3600.0, description="time between RTT probes of the endpoint"
    )


class NetworkAware(PolicyBase):
    """Offload while the endpoint answers its RTT probe within ``rtt_max_ms``; local while the
    link is slow or down."""

    name = "network-aware"
    needs_probe = True
    options_model = NetworkAwareOptions

    def decide(self, state: RouterState) -> Decision:
        """Cloud on a fast link, local on a slow or failed one (or before the first probe)."""
        opts = self.options
        assert isinstance(opts, NetworkAwareOptions)
        if state.probe_failed:
            return Decision(Route.LOCAL, "probe-failed")
        if state.rtt_ns is None:
            return Decision(Route.LOCAL, "no-probe")
        if state.rtt_ns <= opts.rtt_max_ms * 1e6:
            return Decision(Route.CLOUD, "rtt-ok")
        return Decision(Route.LOCAL, "rtt-high")


def policy_names() -> list[str]:
    """Names of all registered policies, sorted."""
    return sorted(plugin_entry_points(GROUP))


def get_policy(name: str) -> PolicyClass:
    """The policy class registered as ``name``; an unknown name is a usage error naming the
    registered ones, a broken plugin a one-line RuntimeNotInstalledError."""
    eps = plugin_entry_points(GROUP)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise InvalidOptionError(
            f"unknown hybrid policy '{name}'", f"pass --opt policy= one of: {known}"
        )
    ep = eps[name]
    try:
        cls = load_entry_point(ep)
    except PluginLoadError as exc:
        raise RuntimeNotInstalledError(
            f"policy {str(exc).removeprefix('plugin ')}", broken_plugin_hint(ep)
        ) from exc
    if not isinstance(cls, PolicyClass):
        raise RuntimeNotInstalledError(
            f"policy {name}: {ep.value} does not implement the policy interface",
            "give it name, options_model and a constructor (options, config), as "
            "tippingpoint.backends.hybrid.policy.PolicyClass declares",
        )
    return cls


def policy_options_model(name: str) -> type[BaseModel]:
    """The options model of policy ``name``."""
    return get_policy(name).options_model


def make_policy(name: str, options: Mapping[str, OptionValue], config: PolicyConfig) -> Policy:
    """Policy ``name`` built from its raw options (validated: a bad one is a usage error)."""
    cls = get_policy(name)
    parsed = parse_options(cls.options_model, options, f"{name} policy")
    return cls(parsed, config)
