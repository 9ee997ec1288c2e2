"""Network profiles as link emulation parameters: the named presets with their sources, the
calculator's existing profiles unchanged, user-defined profiles marked, bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tippingpoint.core.errors import ProfileError, UnknownProfileError
from tippingpoint.core.links import GilbertElliott, OutageMode, OutageWindow
from tippingpoint.profiles.loader import load_catalog
from tippingpoint.profiles.schema import ProfileKind


def test_presets_carry_their_published_figures_and_sources() -> None:
    catalog = load_catalog()
    slow4g = catalog.network("lighthouse-mobile-slow-4g").link()
    assert slow4g.rtt_ms == 150 and slow4g.delay_up_ms == slow4g.delay_down_ms == 75
    # Lighthouse's kbit is 1024 bit: 1.6 * 1024 kbit/s down, 750 kbit/s up
    assert slow4g.rate_down_mbps == pytest.approx(1.6 * 1024 * 1024 / 1e6)
    assert slow4g.rate_up_mbps == pytest.approx(0.768)
    assert "constants.js" in slow4g.source and not slow4g.user_defined
    wpt = {
        "wpt-3g": (300, 1.6, 0.768),
        "wpt-3g-fast": (150, 1.6, 0.768),
        "wpt-4g": (170, 9, 9),
        "wpt-lte": (70, 12, 12),
        "wpt-cable": (28, 5, 1),
        "wpt-dsl": (50, 1.5, 0.384),
    }
    for name, (rtt, down, up) in wpt.items():
        prof = catalog.network(name)
        assert (prof.rtt_ms.value, prof.downlink_mbps.value, prof.uplink_mbps.value) == (
            rtt,
            down,
            up,
        )
        assert prof.rtt_ms.source and "connectivity.ini" in prof.rtt_ms.source
        assert prof.rtt_ms.as_of is not None
    imt = catalog.network("5g-imt2020-embb")
    assert "radio" in imt.caveat and "not end-to-end" in imt.caveat
    assert "M.2410" in (imt.rtt_ms.source or "")
    assert "IMT-2020" in catalog.network("5g").caveat
    wifi = catalog.network("wifi").link()
    assert wifi.jitter_ms > 0 and "assumed" in wifi.caveat


def test_the_calculators_profiles_keep_their_figures() -> None:
    catalog = load_catalog()
    lte = catalog.network("lte")
    assert (lte.rtt_ms.value, lte.uplink_mbps.value, lte.downlink_mbps.value) == (60, 10, 40)
    assert lte.loss.value == 0.005 and lte.cost_per_gb.value == 2.0
    assert {"lan", "wifi", "wan", "5g", "lte", "satellite-leo"} <= set(
        catalog.names(ProfileKind.NETWORK)
    )
    spec = lte.link()
    assert (spec.delay_up_ms, spec.delay_down_ms) == (30, 30)
    assert (spec.rate_up_mbps, spec.rate_down_mbps, spec.loss) == (10, 40, 0.005)


def test_a_profile_from_a_users_file_is_marked_user_defined(tmp_path: Path) -> None:
    mine = tmp_path / "links.toml"
    mine.write_text(
        """
[network.field-modem]
description = "our modem"
rtt_ms = 90
delay_up_ms = 60
uplink_mbps = 2
downlink_mbps = 8
jitter_ms = 4
jitter_distribution = "pareto"
seed = 7
bursty_loss = { p = 0.01, r = 0.3 }
mtu = 1400
outages = [{ start_s = 5, duration_s = 2, mode = "reset", every_s = 30 }]
"""
    )
    catalog = load_catalog([mine])
    prof = catalog.network("field-modem")
    assert prof.user_defined and not catalog.network("lte").user_defined
    spec = prof.link()
    assert spec.user_defined and "user-defined" in spec.describe()
    assert (spec.delay_up_ms, spec.delay_down_ms) == (60, 30)
    assert spec.bursty_loss == GilbertElliott(p=0.01, r=0.3)
    # the calculator's loss is the bursty model's mean, derived and labelled
    assert prof.loss.value == pytest.approx(0.01 / 0.31)
    assert prof.loss.source == "mean of bursty_loss"
    assert spec.loss == 0 and spec.mean_loss == pytest.approx(0.01 / 0.31)
    assert spec.outages == (
        OutageWindow(start_s=5, duration_s=2, mode=OutageMode.RESET, every_s=30),
    )
    assert spec.mtu == 1400 and spec.seed == 7


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("rtt_ms = -5\nuplink_mbps = 1\ndownlink_mbps = 1", "rtt_ms"),
        ("rtt_ms = 50\nuplink_mbps = 0\ndownlink_mbps = 1", "uplink_mbps"),
        ("rtt_ms = 50\ndelay_up_ms = -1\nuplink_mbps = 1\ndownlink_mbps = 1", "delay_up_ms"),
        (
            "rtt_ms = 50\ndelay_up_ms = 10\ndelay_down_ms = 10\nuplink_mbps = 1\ndownlink_mbps = 1",
            "differs from rtt_ms",
        ),
        ("rtt_ms = 50\nuplink_mbps = 1\ndownlink_mbps = 1\nmtu = 100", "mtu"),
        (
            "rtt_ms = 50\nuplink_mbps = 1\ndownlink_mbps = 1\n"
            "outages = [{ start_s = 1, duration_s = 5, every_s = 2 }]",
            "every_s",
        ),
        (
            "rtt_ms = 50\nuplink_mbps = 1\ndownlink_mbps = 1\njitter_distribution = 'cauchy'",
            "jitter",
        ),
    ],
)
def test_bad_link_values_are_one_line_profile_errors(
    tmp_path: Path, body: str, needle: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f"[network.bad]\n{body}\n")
    with pytest.raises(ProfileError) as err:
        load_catalog([path])
    line = err.value.one_line()
    assert needle in line and "\n" not in line and err.value.exit_code == 2


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(UnknownProfileError) as err:
        load_catalog().network("carrier-pigeon")
    assert "wpt-lte" in err.value.one_line() and err.value.exit_code == 2
