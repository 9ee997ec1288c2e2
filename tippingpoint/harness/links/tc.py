"""The kernel's link: Linux ``tc`` (netem, or tbf for rate alone) on the loopback of a network
namespace tippingpoint creates, with two relays carrying the client's connections through it.

::

    client -> 127.0.0.1:A  (relay 1, this process, host namespace: applies outages only)
           -> 127.0.0.1:B  inside the namespace, over its shaped loopback (the kernel's TCP:
                           real handshakes, retransmissions and congestion control)
           -> relay 2 (listening inside the namespace) -> the endpoint

The namespace's ``lo`` gets the profile's MTU (1500 by default: with the loopback's 64 KiB MTU
tbf's bucket cannot hold a packet). Where the kernel has htb and u32, up (to port B) and down
(from port B) get their own leaf qdisc; otherwise one qdisc carries both and the record says so.
The RTT is measured on every connection by relay 1's connect through the shaped loopback; the
namespace's ``/proc/net/snmp`` gives the retransmissions and ``tc -s`` the drops.
"""

from __future__ import annotations

import math
import socket

from tippingpoint.core.links import JitterDistribution, LinkSpec
from tippingpoint.harness.links.netns import Namespace, TcCapabilities, find_tool
from tippingpoint.harness.links.proxy import LinkProxy
from tippingpoint.harness.links.record import KernelTcp, LinkRecord, QdiscRecord, ShaperKind

LO_ETH_HEADER = 14
"""The loopback device carries an Ethernet header: tc counts it in every packet's length."""
UNLIMITED = "10gbit"
"""Rate of the htb classes: they only sort packets by direction, the leaves shape."""
TBF_LATENCY_MS = 100
"""How long a packet may wait in tbf's queue before it is dropped (sets the queue's size)."""
HTB_CLASS = ("htb", "rate", UNLIMITED, "quantum", "60000")
U32 = ("parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip")


def _rate(mbps: float) -> str:
    return f"{round(mbps * 1e6)}bit"


def _ms(value: float) -> str:
    return f"{value:.3f}ms"


def netem_args(
    spec: LinkSpec,
    delay_ms: float,
    rate_mbps: float | None,
    seed: bool,
    distributions: bool = True,
) -> list[str]:
    """The netem options for one direction of ``spec`` (without ``distributions``, jitter is
    uniform: netem's default when its tables are missing)."""
    args = ["netem", "delay", _ms(delay_ms)]
    if spec.jitter_ms > 0:
        args.append(_ms(spec.jitter_ms))
        if spec.jitter_distribution is not JitterDistribution.UNIFORM and distributions:
            args += ["distribution", spec.jitter_distribution.value]
    ge = spec.bursty_loss
    if ge is not None:
        args += ["loss", "gemodel", f"{ge.p * 100:.6g}%", f"{ge.r * 100:.6g}%"]
        args += [f"{ge.loss_in_bad * 100:.6g}%", f"{ge.loss_in_good * 100:.6g}%"]
    elif spec.loss > 0:
        args += ["loss", "random", f"{spec.loss * 100:.6g}%"]
    packets = 1000
    if rate_mbps is not None:
        args += ["rate", _rate(rate_mbps)]
        bdp = rate_mbps * 1e6 / 8 * (delay_ms + 4 * spec.jitter_ms + 200) / 1e3
        packets = max(packets, math.ceil(2 * bdp / spec.mtu))
    args += ["limit", str(packets)]
    if seed:
        args += ["seed", str(spec.seed)]
    return args


def tbf_args(rate_mbps: float, mtu: int) -> list[str]:
    """The tbf options for one direction at ``rate_mbps``."""
    frame = mtu + LO_ETH_HEADER
    burst = max(2 * frame, int(rate_mbps * 1e6 / 8 * 0.002))
    return ["tbf", "rate", _rate(rate_mbps), "burst", str(burst), "latency", f"{TBF_LATENCY_MS}ms"]


class TcLink:
    """A :class:`LinkSpec` applied by ``tc`` in a namespace; ``start`` returns the entry."""

    def __init__(
        self,
        spec: LinkSpec,
        upstream: tuple[str, int],
        kind: ShaperKind,
        caps: TcCapabilities,
        reason: str = "",
        listen: socket.socket | None = None,
    ) -> None:
        if kind is ShaperKind.PROXY:
            raise ValueError("TcLink applies netem or tbf")
        self.spec = spec
        self.upstream = upstream
        self.kind = kind
        self.caps = caps
        self.reason = reason
        self.listen = listen
        self.notes: list[str] = []
        self.ns: Namespace | None = None
        self.inner: LinkProxy | None = None
        self.outer: LinkProxy | None = None
        self._snmp: dict[str, int] = {}
        self._leaves: dict[str, str] = {}

    async def start(self) -> tuple[str, int]:
        """Create the namespace, shape its loopback, start both relays; return the entry."""
        spec = self.spec
        ns = self.ns = Namespace()
        try:
            ip, tc = find_tool("ip") or "ip", find_tool("tc") or "tc"
            ns.run([ip, "link", "set", "dev", "lo", "mtu", str(spec.mtu), "up"])
            listener: socket.socket = ns.listener()
            port = int(listener.getsockname()[1])
            self._shape(tc, port)
            bare = spec.model_copy(
                update={
                    "delay_up_ms": 0.0,
                    "delay_down_ms": 0.0,
                    "jitter_ms": 0.0,
                    "loss": 0.0,
                    "bursty_loss": None,
                    "rate_up_mbps": None,
                    "rate_down_mbps": None,
                }
            )
            self.inner = LinkProxy(
                bare.model_copy(update={"outages": ()}),
                self.upstream,
                kind=self.kind,
                reason=self.reason,
                listen=listener,
            )
            await self.inner.start()
            self.outer = LinkProxy(
                bare,
                ("127.0.0.1", port),
                kind=self.kind,
                reason=self.reason,
                listen=self.listen,
                upstream_socket=ns.socket,
            )
            self._snmp = ns.tcp_counters()
            return await self.outer.start()
        except BaseException:
            await self._teardown()
            raise

    def _shape(self, tc: str, port: int) -> None:
        ns, spec, caps = self.ns, self.spec, self.caps
        assert ns is not None
        uniform = spec.jitter_distribution is JitterDistribution.UNIFORM
        if self.kind is ShaperKind.NETEM and spec.jitter_ms and not uniform:
            if not caps.netem_distributions:
                self.notes.append(
                    f"netem's distribution tables are missing: jitter drawn uniform, not "
                    f"{spec.jitter_distribution.value}"
                )
            if not caps.netem_seed:
                self.notes.append("this tc has no netem seed: jitter and loss are not seeded")
        dev = ["dev", "lo"]

        def leaf(up: bool) -> list[str] | None:
            rate = spec.rate_up_mbps if up else spec.rate_down_mbps
            if self.kind is ShaperKind.NETEM:
                delay = spec.delay_up_ms if up else spec.delay_down_ms
                return netem_args(spec, delay, rate, caps.netem_seed, caps.netem_distributions)
            return None if rate is None else tbf_args(rate, spec.mtu)

        if caps.per_direction:
            ns.run([tc, "qdisc", "add", *dev, "root", "handle", "1:", "htb", "default", "30"])
            for cls in ("1:10", "1:20", "1:30"):
                ns.run([tc, "class", "add", *dev, "parent", "1:", "classid", cls, *HTB_CLASS])
            for match, flow in (("dport", "1:10"), ("sport", "1:20")):
                ns.run(
                    [tc, "filter", "add", *dev, *U32, match, str(port), "0xffff", "flowid", flow]
                )
            for up, cls, handle in ((True, "1:10", "10:"), (False, "1:20", "20:")):
                args = leaf(up)
                if args is not None:
                    ns.run([tc, "qdisc", "add", *dev, "parent", cls, "handle", handle, *args])
                    self._leaves[handle] = "up" if up else "down"
            return
        # one qdisc for both directions: symmetric delay, the lower rate
        rates = [r for r in (spec.rate_up_mbps, spec.rate_down_mbps) if r is not None]
        rate = min(rates) if rates else None
        if self.kind is ShaperKind.NETEM:
            both: list[str] | None = netem_args(
                spec, spec.rtt_ms / 2, rate, caps.netem_seed, caps.netem_distributions
            )
        else:
            both = None if rate is None else tbf_args(rate, spec.mtu)
        if both is not None:
            ns.run([tc, "qdisc", "add", *dev, "root", "handle", "1:", *both])
            self._leaves["1:"] = "both"
        self.notes.append(
            "htb or u32 missing: one qdisc carries both directions (RTT split evenly, the lower "
            "rate both ways)"
        )

    @property
    def started_s(self) -> float:
        """When shaping began (``time.monotonic``); outage windows are counted from here."""
        assert self.outer is not None, "start() first"
        return self.outer.started_s

    async def stop(self) -> LinkRecord:
        """Stop both relays, read the kernel's counters, remove the namespace; the record."""
        assert self.outer is not None and self.inner is not None and self.ns is not None
        outer = await self.outer.stop()
        inner = await self.inner.stop()
        ns = self.ns
        after = ns.tcp_counters()
        stats = ns.qdisc_stats()
        await self._teardown()
        delta = {k: after.get(k, 0) - self._snmp.get(k, 0) for k in after}
        kernel = KernelTcp(
            out_segs=delta.get("OutSegs", 0),
            retrans_segs=delta.get("RetransSegs", 0),
            in_segs=delta.get("InSegs", 0),
            in_errs=delta.get("InErrs", 0),
            out_rsts=delta.get("OutRsts", 0),
        )
        qdiscs = []
        for q in stats:
            handle = str(q.get("handle", ""))
            if handle in self._leaves:
                qdiscs.append(
                    QdiscRecord(
                        direction=self._leaves[handle],
                        kind=str(q.get("kind", "")),
                        sent_bytes=_int(q.get("bytes")),
                        sent_packets=_int(q.get("packets")),
                        dropped=_int(q.get("drops")),
                        overlimits=_int(q.get("overlimits")),
                    )
                )
        # up leaves the link where relay 2 delivers it; down where relay 1 delivers it
        return outer.model_copy(
            update={
                "profile": self.spec,
                "up": inner.up,
                "down": outer.down,
                "resets": {**inner.resets, **outer.resets},
                "connect_errors": {**inner.connect_errors, **outer.connect_errors},
                "kernel_tcp": kernel,
                "qdiscs": tuple(qdiscs),
                "notes": tuple(self.notes),
            }
        )

    async def _teardown(self) -> None:
        if self.ns is not None:
            ns, self.ns = self.ns, None
            await ns.acall(lambda: None)
            ns.close()


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0
