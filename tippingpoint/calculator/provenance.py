"""Were the edge figures measured on the device being costed? Host fingerprints against
device profile identities.

Each on-device report records its host (architecture, CPU model, the device-tree board model
on Arm boards, whether it ran under an emulator). A device profile may declare an identity
(:class:`tippingpoint.profiles.schema.DeviceIdentity`). A report matches when its
architecture is the profile's and one of the profile's CPU/board names appears in the host's
board or CPU model; a run under an emulator never matches. A mismatch is refused unless the
caller asks for a proxy host, and then every figure says "measured on X, costed as Y".
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from tippingpoint.core.schema import HostFingerprint, Report
from tippingpoint.core.types import Frozen
from tippingpoint.profiles.schema import DeviceProfile, normalise_architecture


class Match(str, Enum):
    """How a host compares with a device profile's identity."""

    MATCH = "match"
    MISMATCH = "mismatch"
    UNVERIFIED = "unverified"
    UNDECLARED = "undeclared"


class HostCheck(Frozen):
    """One report's host against the device profile."""

    run_id: str
    host: str
    match: Match
    why: str


def describe_host(h: HostFingerprint) -> str:
    """A short name of a host: board or CPU model, and architecture."""
    names = [n for n in (h.board, h.cpu_model) if n]
    name = names[0] if names else "an unnamed CPU"
    emulated = f", emulated by {h.emulator or 'an emulator'}" if h.emulated else ""
    return f"{name} ({h.machine}{emulated})"


def check_host(device: DeviceProfile, host: HostFingerprint) -> tuple[Match, str]:
    """Whether ``host`` is the device ``device`` describes, and why not."""
    ident = device.identity
    if ident is None:
        return Match.UNDECLARED, f"device profile '{device.name}' declares no identity"
    if host.emulated:
        return Match.MISMATCH, "the run was emulated, so its speed is not the device's"
    if ident.architecture is not None:
        want = normalise_architecture(ident.architecture)
        got = normalise_architecture(host.machine)
        if want != got:
            return Match.MISMATCH, f"architecture {got}, the profile's is {want}"
    names = [*ident.cpu, *ident.board]
    if not names:
        return Match.MATCH, "architecture matches (the profile names no CPU or board)"
    seen = [t for t in (host.board, host.cpu_model) if t]
    if not seen:
        return Match.UNVERIFIED, "the report records no board or CPU model to compare"
    if any(n.lower() in t.lower() for n in names for t in seen):
        return Match.MATCH, "board or CPU model matches"
    return (
        Match.MISMATCH,
        f"{' / '.join(seen)} is none of {', '.join(names)}",
    )


def check_reports(device: DeviceProfile, reports: Sequence[Report]) -> list[HostCheck]:
    """The check of every report's host."""
    out = []
    for r in reports:
        match, why = check_host(device, r.host)
        out.append(HostCheck(run_id=r.run_id, host=describe_host(r.host), match=match, why=why))
    return out
