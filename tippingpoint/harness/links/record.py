"""The link record: what a shaped link was asked to do and what it did, for the report.

The models live in :mod:`tippingpoint.core.links` beside
:class:`~tippingpoint.core.links.LinkSpec` (the report contract embeds them and may not import
the harness); this module re-exports them for the shapers. Every figure is measured during the
run by the shaper itself (bytes, handshakes, stalls, resets) or read from the kernel inside
tippingpoint's namespace (``/proc/net/snmp``, ``tc -s qdisc``); none is copied from the profile.
"""

from tippingpoint.core.links import (
    DirectionRecord,
    KernelTcp,
    LatencySummary,
    LinkRecord,
    OutageRecord,
    QdiscRecord,
    ShaperKind,
)

__all__ = [
    "DirectionRecord",
    "KernelTcp",
    "LatencySummary",
    "LinkRecord",
    "OutageRecord",
    "QdiscRecord",
    "ShaperKind",
]
