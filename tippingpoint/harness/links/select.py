"""Choosing the shaper: what the user asked for, what the profile needs and what the machine
has, with the reason printed.

- ``auto`` (the default): the user-space proxy, which works in any container and in CI and
  gives the same emulation on every machine.
- ``tc``: the kernel where the machine allows it: netem in a namespace where the kernel has
  ``sch_netem`` (the kernel's own TCP under the profile), else tbf when the profile only limits
  the rate (outages are applied by the relay), else the proxy, with one line naming the missing
  qdisc and the fallback.
- ``proxy``, ``netem``, ``tbf``: exactly that one. Asking for a shaper the machine lacks, or one
  that cannot apply the profile, is a usage error with its fix, raised before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.links import LinkSpec
from tippingpoint.harness.links.netns import TcCapabilities, probe_tc
from tippingpoint.harness.links.record import ShaperKind

SHAPER_CHOICES = ("auto", "proxy", "tc", "netem", "tbf")
"""What ``--shaper`` accepts."""
TBF_FEATURES = frozenset({"rate", "outages"})
"""What the tbf shaper can apply (outages by its relay)."""


@dataclass(frozen=True)
class ShaperSelection:
    """The shaper chosen for a profile and the one line that says why."""

    kind: ShaperKind
    reason: str
    spec: LinkSpec
    caps: TcCapabilities | None = None


def link_spec(**fields: object) -> LinkSpec:
    """A :class:`LinkSpec` from user input; an invalid value is an InvalidOptionError naming
    the field (e.g. a negative delay or a rate of 0)."""
    try:
        return LinkSpec.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InvalidOptionError(
            f"network profile {fields.get('name', '?')!r}: {where}: {msg}",
            "delays and jitter are >= 0 ms, rates > 0 Mbit/s (omit a rate for unlimited), "
            "loss in [0, 1)",
        ) from None


def _unapplied(spec: LinkSpec) -> str:
    parts = []
    if spec.rtt_ms:
        parts.append(f"delay {spec.rtt_ms:g} ms RTT")
    if spec.jitter_ms:
        parts.append(f"jitter {spec.jitter_ms:g} ms")
    if spec.mean_loss:
        parts.append(f"loss {spec.mean_loss:.3g}")
    return ", ".join(parts)


def _tc_missing(caps: TcCapabilities, qdisc: str) -> str:
    """One line naming what is missing for ``qdisc``: the kernel's module and tc's message."""
    for line in caps.missing:
        if line.startswith(f"sch_{qdisc}:") or not caps.namespace:
            return line.rstrip(".")
    return f"sch_{qdisc}: unavailable"


def select_shaper(
    spec: LinkSpec, requested: str = "auto", caps: TcCapabilities | None = None
) -> ShaperSelection:
    """The shaper for ``spec``: ``requested`` (auto, proxy, tc, netem, tbf) against the
    machine's capabilities (probed when needed and not given). Raises InvalidOptionError
    (exit 2) with the fix."""
    name = spec.name
    if requested not in SHAPER_CHOICES:
        raise InvalidOptionError(
            f"unknown network shaper {requested!r}", f"choose one of {', '.join(SHAPER_CHOICES)}"
        )
    if requested in ("proxy", "auto"):
        why = "asked for" if requested == "proxy" else "the default; --shaper tc uses the kernel"
        return ShaperSelection(
            ShaperKind.PROXY, f"network '{name}': user-space proxy on loopback ({why})", spec
        )
    caps = probe_tc() if caps is None else caps
    rate_only = spec.features() <= TBF_FEATURES and "rate" in spec.features()
    if requested == "netem":
        if not caps.namespace or not caps.has("netem"):
            raise InvalidOptionError(
                f"shaper netem is not available here: {_tc_missing(caps, 'netem')}",
                "use --shaper proxy (user space, any machine), or tbf for a rate-only profile",
            )
        return ShaperSelection(
            ShaperKind.NETEM,
            f"network '{name}': tc netem in a network namespace tippingpoint made (asked for)",
            spec,
            caps,
        )
    if requested == "tbf":
        if not caps.namespace or not caps.has("tbf"):
            raise InvalidOptionError(
                f"shaper tbf is not available here: {_tc_missing(caps, 'tbf')}",
                "use --shaper proxy (user space, any machine)",
            )
        if not rate_only:
            extra = _unapplied(spec)
            if "rate" in spec.features():
                what = f"also sets {extra}"
            else:
                what = "sets no rate" + (f" but {extra}" if extra else "")
            raise InvalidOptionError(
                f"shaper tbf limits the rate only; network '{name}' {what}",
                "use --shaper proxy, or netem where the kernel has sch_netem",
            )
        return ShaperSelection(
            ShaperKind.TBF,
            f"network '{name}': tc tbf in a network namespace tippingpoint made (asked for)",
            spec,
            caps,
        )
    # tc: the best the kernel offers here, else the proxy
    if caps.namespace and caps.has("netem"):
        return ShaperSelection(
            ShaperKind.NETEM,
            f"network '{name}': tc netem in a network namespace tippingpoint made (the kernel's "
            "TCP under the profile)",
            spec,
            caps,
        )
    if caps.namespace and caps.has("tbf") and rate_only:
        return ShaperSelection(
            ShaperKind.TBF,
            f"network '{name}': tc tbf in a network namespace tippingpoint made "
            f"({_tc_missing(caps, 'netem')}; the profile limits the rate only)",
            spec,
            caps,
        )
    if not caps.namespace:
        why = caps.missing[0] if caps.missing else "no network namespace"
    else:
        why = _tc_missing(caps, "netem")
        if caps.has("tbf") and not rate_only:
            why += f"; tbf limits the rate only and the profile sets {_unapplied(spec)}"
    return ShaperSelection(
        ShaperKind.PROXY,
        f"network '{name}': user-space proxy on loopback ({why}; falling back to the proxy)",
        spec,
        caps,
    )
