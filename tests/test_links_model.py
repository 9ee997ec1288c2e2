"""The proxy's per-direction link model, worked by hand: serialisation at the rate, loss
recovered by fast retransmit or the timeout, Gilbert-Elliott bursts, black-hole outages."""

from __future__ import annotations

import random

import pytest

from tippingpoint.core.links import (
    TCP_IP_HEADER_BYTES,
    GilbertElliott,
    LinkSpec,
    OutageMode,
    OutageWindow,
)
from tippingpoint.harness.links.model import DirectionModel


def spec(**kw: object) -> LinkSpec:
    base: dict[str, object] = {"name": "t", "user_defined": True}
    base.update({"delay_up_ms": 10.0, "delay_down_ms": 30.0})
    base.update(kw)
    return LinkSpec.model_validate(base)


def test_zero_profile_is_trivial_and_delay_is_per_direction() -> None:
    assert DirectionModel(spec(delay_up_ms=0, delay_down_ms=0), True, 0.0).trivial
    up, down = DirectionModel(spec(), True, 0.0), DirectionModel(spec(), False, 0.0)
    assert not up.trivial
    assert [s.at for s in up.schedule(1.0, 100)] == [pytest.approx(1.010)]
    assert [s.at for s in down.schedule(1.0, 100)] == [pytest.approx(1.030)]


def test_rate_serialises_segments_with_their_headers_on_a_shared_bottleneck() -> None:
    m = DirectionModel(spec(delay_up_ms=0, rate_up_mbps=1.0), True, 0.0)
    mss = m.mss
    # 10 full segments: (10 * (mss + 52)) bytes at 1 Mbit/s, delivered in 5 ms slices
    slices = m.schedule(0.0, 10 * mss)
    assert sum(s.nbytes for s in slices) == 10 * mss
    assert slices[-1].at == pytest.approx(10 * (mss + TCP_IP_HEADER_BYTES) * 8 / 1e6)
    # a second chunk read at once queues behind the first (the link is busy)
    again = m.schedule(0.0, mss)
    assert again[-1].at == pytest.approx(11 * (mss + TCP_IP_HEADER_BYTES) * 8 / 1e6)


def test_a_lost_lone_segment_waits_for_the_timeout_and_one_followed_by_three_for_an_rtt() -> None:
    lossy = spec(loss=0.5, seed=3)
    m = DirectionModel(lossy, True, 0.0, rto_min_ms=200)
    rtt, rto = 0.040, 0.040 + 0.200
    extras = set()
    for _ in range(200):
        (s,) = m.schedule(0.0, 100)  # one segment: nothing behind it
        extras.add(round(s.at - 0.010, 6))
    # first retransmission after one RTO, then back-off (rto, 3 rto, 7 rto, ...)
    assert {0.0, round(rto, 6), round(3 * rto, 6)} <= extras
    # a seed whose draws lose the first of five segments and nothing after (up uses seed * 2)
    seed = next(
        n
        for n in range(10_000)
        if [x < 0.5 for x in _draws(2 * n, 6)] == [True, False, False, False, False, False]
    )
    fast = DirectionModel(spec(loss=0.5, seed=seed), True, 0.0)
    (s,) = fast.schedule(0.0, 5 * fast.mss)
    assert s.at == pytest.approx(0.010 + rtt) and s.stalled
    assert fast.counters.lost_segments == 1 and fast.counters.stalls == 1


def _draws(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


def test_gilbert_elliott_loses_in_bursts_at_its_stationary_mean() -> None:
    ge = GilbertElliott(p=0.02, r=0.25)
    m = DirectionModel(spec(bursty_loss=ge, seed=11), True, 0.0)
    seq = [m._lost() for _ in range(200_000)]
    mean = sum(seq) / len(seq)
    assert mean == pytest.approx(ge.mean_loss, rel=0.05)
    runs, cur = [], 0
    for lost in seq:
        if lost:
            cur += 1
        elif cur:
            runs.append(cur)
            cur = 0
    # mean burst 1 / r = 4 packets, against ~1 for independent loss at the same rate
    assert sum(runs) / len(runs) == pytest.approx(1 / ge.r, rel=0.1)


def test_blackhole_holds_data_until_a_retransmission_after_the_window() -> None:
    window = OutageWindow(start_s=1.0, duration_s=0.5, mode=OutageMode.BLACKHOLE)
    m = DirectionModel(spec(outages=(window,)), True, t0=100.0, rto_min_ms=200)
    before = m.schedule(100.5, 10)[0]
    assert before.at == pytest.approx(100.51) and not before.stalled
    held = m.schedule(101.1, 10)[0]
    rto = 0.240
    # retransmissions at +rto, +3 rto: the first after 101.5 gets through
    assert held.stalled and held.at == pytest.approx(101.1 + 3 * rto + 0.010)
    assert m.counters.blackholed == {1.0: 1}
    # a SYN in the window is retried on the 1 s back-off
    assert m.segment(101.2) == pytest.approx(101.2 + 1.0 + 0.010)
