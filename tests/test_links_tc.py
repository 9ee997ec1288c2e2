"""The kernel's shapers in a namespace tippingpoint creates (tbf where the kernel lacks netem,
netem where it has it), capability detection that never crashes, and the choice of shaper
with its printed reason. Tests that need what the machine lacks skip with the reason."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.links import LinkSpec, OutageMode, OutageWindow
from tippingpoint.harness.links.farend import start_bulk, start_echo
from tippingpoint.harness.links.netns import Namespace, TcCapabilities, probe_tc
from tippingpoint.harness.links.record import LinkRecord, ShaperKind
from tippingpoint.harness.links.select import link_spec, select_shaper
from tippingpoint.harness.links.tc import TcLink, netem_args, tbf_args


def spec(name: str, **kw: object) -> LinkSpec:
    base: dict[str, object] = {"name": name, "user_defined": True}
    base.update({"delay_up_ms": 0.0, "delay_down_ms": 0.0})
    base.update(kw)
    return LinkSpec.model_validate(base)


NO_NETEM = TcCapabilities(
    True,
    frozenset({"tbf", "htb"}),
    frozenset({"u32"}),
    False,
    ("sch_netem: Error: Specified qdisc kind is unknown.",),
)
NO_NAMESPACE = TcCapabilities(False, missing=("network namespace: Operation not permitted",))
WITH_NETEM = TcCapabilities(True, frozenset({"netem", "tbf", "htb"}), frozenset({"u32"}), True)


def need(qdisc: str) -> TcCapabilities:
    caps = probe_tc()
    if not caps.namespace:
        pytest.skip(f"no network namespace here: {'; '.join(caps.missing)}")
    if not caps.has(qdisc):
        line = next((m for m in caps.missing if m.startswith(f"sch_{qdisc}")), f"sch_{qdisc}")
        pytest.skip(f"this kernel lacks {line}")
    return caps


def test_capability_probe_never_raises_and_names_what_is_missing() -> None:
    caps = probe_tc()
    assert isinstance(caps, TcCapabilities)
    for line in caps.missing:
        assert "\n" not in line and ":" in line
    if caps.namespace:
        for q in ("netem", "tbf", "htb"):
            assert caps.has(q) or any(m.startswith(f"sch_{q}:") for m in caps.missing)


def test_the_namespace_is_tippingpoints_own_and_has_only_loopback() -> None:
    if not probe_tc().namespace:
        pytest.skip(f"no network namespace here: {'; '.join(probe_tc().missing)}")
    ns = Namespace()
    try:
        links = ns.run(["ip", "-o", "link", "show"]).stdout.splitlines()
        assert len(links) == 1 and ": lo:" in links[0]
        # a socket of the namespace cannot reach the host's loopback
        listener = ns.listener()
        port = listener.getsockname()[1]

        async def reach() -> bool:
            try:
                _, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
            except OSError:
                return False
            w.close()
            return True

        assert not asyncio.run(reach())
        listener.close()
    finally:
        ns.close()


@pytest.mark.parametrize("rate", [1.6, 10.0])
def test_tbf_in_a_namespace_delivers_the_set_rate(rate: float) -> None:
    caps = need("tbf")
    link = spec(f"tbf{rate:g}", rate_up_mbps=rate, rate_down_mbps=rate)
    selection = select_shaper(link, "tbf", caps)
    assert selection.kind is ShaperKind.TBF
    nbytes = int(rate * 1e6 / 8 * 1.5)

    async def main() -> tuple[float, LinkRecord]:
        srv, port = await start_bulk(nbytes)
        tc = TcLink(link, ("127.0.0.1", port), ShaperKind.TBF, caps, selection.reason)
        _, entry = await tc.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", entry)
        writer.write(b"g")
        first = last = 0.0
        n = n0 = 0
        while data := await reader.read(65536):
            now = time.perf_counter()
            if not n:
                first, n0 = now, len(data)
            n += len(data)
            last = now
        writer.close()
        record = await tc.stop()
        srv.close()
        assert n == nbytes
        return (n - n0) * 8 / (last - first) / 1e6, record

    got, record = asyncio.run(main())
    assert got == pytest.approx(rate, rel=0.10), f"{got:.3f} Mbit/s through tbf at {rate}"
    assert record.shaper is ShaperKind.TBF and record.shaper_reason == selection.reason
    assert record.down.bytes == nbytes
    # the record measures the same goodput where the bytes leave the shaped loopback
    assert record.down.goodput_mbps == pytest.approx(got, rel=0.05)
    assert record.kernel_tcp is not None and record.kernel_tcp.out_segs > 0
    # the namespace's /proc/net/snmp, read before and after: a segment tbf dropped was resent
    dropped = sum(q.dropped for q in record.qdiscs)
    # (not the converse: a tail-loss probe is counted as a retransmission without a drop)
    if dropped:
        assert record.kernel_tcp.retrans_segs > 0, (dropped, record.kernel_tcp)
    sent = {q.direction: q for q in record.qdiscs}
    if caps.per_direction:
        assert sent["down"].kind == "tbf" and sent["down"].sent_bytes >= nbytes
        assert sent["up"].sent_bytes < sent["down"].sent_bytes
    assert record.handshake_rtt is not None and record.handshake_rtt.n == 1


def test_netem_in_a_namespace_adds_the_profiles_rtt() -> None:
    caps = need("netem")
    link = spec("netem50", delay_up_ms=25.0, delay_down_ms=25.0, rate_down_mbps=10.0)

    async def main() -> tuple[float, float, LinkRecord]:
        srv, port = await start_echo()

        async def pings(p: int, n: int) -> list[float]:
            reader, writer = await asyncio.open_connection("127.0.0.1", p)
            out = []
            for _ in range(n + 1):
                t = time.perf_counter()
                writer.write(b"x" * 100)
                await reader.readexactly(100)
                out.append(time.perf_counter() - t)
            writer.close()
            return out[1:]

        direct = await pings(port, 20)
        tc = TcLink(link, ("127.0.0.1", port), ShaperKind.NETEM, caps)
        _, entry = await tc.start()
        shaped = await pings(entry, 20)
        record = await tc.stop()
        srv.close()
        return statistics.median(direct), statistics.median(shaped), record

    direct, shaped, record = asyncio.run(main())
    assert (shaped - direct) * 1e3 == pytest.approx(50.0, rel=0.10)
    assert record.handshake_rtt is not None
    assert record.handshake_rtt.p50_ms == pytest.approx(50.0, rel=0.10)


def test_qdisc_arguments() -> None:
    s = spec("x", delay_up_ms=10.0, jitter_ms=2.0, loss=0.01, seed=4)
    assert netem_args(s, 10.0, 1.6, seed=True) == [
        "netem",
        "delay",
        "10.000ms",
        "2.000ms",
        "distribution",
        "normal",
        "loss",
        "random",
        "1%",
        "rate",
        "1600000bit",
        "limit",
        "1000",
        "seed",
        "4",
    ]
    assert tbf_args(10.0, 1500)[:3] == ["tbf", "rate", "10000000bit"]
    assert int(tbf_args(0.5, 1500)[4]) >= 2 * 1514  # the bucket holds two full frames


def test_auto_is_the_proxy_and_tc_takes_the_best_the_kernel_has_and_says_why() -> None:
    delayed = spec("lte-ish", delay_up_ms=30.0, delay_down_ms=30.0, rate_down_mbps=40.0)
    rate_only = spec("capped", rate_up_mbps=5.0, rate_down_mbps=5.0)
    auto = select_shaper(delayed, "auto", WITH_NETEM)
    assert auto.kind is ShaperKind.PROXY and "the default" in auto.reason
    sel = select_shaper(delayed, "tc", NO_NETEM)
    assert sel.kind is ShaperKind.PROXY
    assert "sch_netem" in sel.reason and "falling back to the proxy" in sel.reason
    assert "\n" not in sel.reason
    assert select_shaper(rate_only, "tc", NO_NETEM).kind is ShaperKind.TBF
    assert select_shaper(delayed, "tc", WITH_NETEM).kind is ShaperKind.NETEM
    no_ns = select_shaper(delayed, "tc", NO_NAMESPACE)
    assert no_ns.kind is ShaperKind.PROXY and "Operation not permitted" in no_ns.reason
    assert select_shaper(delayed, "proxy", NO_NAMESPACE).kind is ShaperKind.PROXY
    # on this machine, whatever it has
    real = select_shaper(delayed, "tc")
    assert real.kind in set(ShaperKind) and real.reason.startswith("network 'lte-ish'")


@pytest.mark.parametrize(
    ("requested", "caps", "needle"),
    [
        ("netem", NO_NETEM, "sch_netem"),
        ("tbf", NO_NAMESPACE, "Operation not permitted"),
        ("netem", NO_NAMESPACE, "Operation not permitted"),
        ("carrier-pigeon", NO_NETEM, "unknown network shaper"),
    ],
)
def test_a_shaper_the_machine_lacks_is_a_usage_error_with_the_fix(
    requested: str, caps: TcCapabilities, needle: str
) -> None:
    with pytest.raises(InvalidOptionError) as err:
        select_shaper(spec("x", delay_up_ms=5.0, delay_down_ms=5.0), requested, caps)
    line = err.value.one_line()
    assert needle in line and "\n" not in line and err.value.exit_code == 2
    assert err.value.hint


def test_tbf_refuses_what_it_cannot_apply() -> None:
    with pytest.raises(InvalidOptionError) as err:
        select_shaper(spec("lte-ish", delay_up_ms=30.0, delay_down_ms=30.0), "tbf", NO_NETEM)
    assert "delay 60 ms" in err.value.one_line() and "--shaper proxy" in err.value.one_line()
    with pytest.raises(InvalidOptionError):
        select_shaper(spec("nothing"), "tbf", NO_NETEM)
    outages = (OutageWindow(start_s=1, duration_s=1, mode=OutageMode.RESET),)
    ok = select_shaper(spec("capped", rate_down_mbps=2.0, outages=outages), "tbf", NO_NETEM)
    assert ok.kind is ShaperKind.TBF


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"delay_up_ms": -1.0, "delay_down_ms": 1.0}, "delay_up_ms"),
        ({"delay_up_ms": 1.0, "delay_down_ms": 1.0, "rate_down_mbps": 0.0}, "rate_down_mbps"),
        ({"delay_up_ms": 1.0, "delay_down_ms": 1.0, "loss": 1.0}, "loss"),
    ],
)
def test_bad_link_spec_input_is_a_usage_error(fields: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidOptionError) as err:
        link_spec(name="x", user_defined=True, **fields)
    assert needle in err.value.one_line() and err.value.exit_code == 2
