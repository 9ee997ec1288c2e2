from pathlib import Path

import pytest

from tippingpoint.core.errors import ProfileError, UnknownProfileError, UsageError
from tippingpoint.profiles.loader import load_catalog, load_workload, parse_profile_file
from tippingpoint.profiles.schema import (
    CloudKind,
    CloudProfile,
    DeviceProfile,
    ProfileKind,
    ScalingMode,
    Sourced,
)


def test_starter_set_covers_every_kind_and_names_sources() -> None:
    catalog = load_catalog()
    assert len(catalog.names(ProfileKind.DEVICE)) >= 4
    assert len(catalog.names(ProfileKind.CLOUD)) >= 6
    assert len(catalog.names(ProfileKind.NETWORK)) >= 4
    assert len(catalog.names(ProfileKind.ENERGY)) >= 4
    assert len(catalog.names(ProfileKind.WORKLOAD)) >= 2
    kinds = {catalog.cloud(n).kind for n in catalog.names(ProfileKind.CLOUD)}
    assert kinds == {CloudKind.INSTANCE, CloudKind.API}
    # the figures of COST-REFERENCE.md are carried with their source and date
    t4 = catalog.cloud("gpu-t4-ondemand").price_per_hour
    assert t4 is not None and t4.value == 0.526 and not t4.assumed
    assert t4.as_of is not None and t4.as_of.isoformat() == "2026-01-21"
    assert catalog.device("rpi5").purchase_price.value == 80
    assert catalog.energy("us-average").price_per_kwh.value == pytest.approx(0.1545)
    # a bare number in the starter set is an assumption, and says so
    assert catalog.device("rpi5").life_years.assumed


def _all_sourced(profile: object) -> list[Sourced]:
    out: list[Sourced] = []
    for value in vars(profile).values():
        if isinstance(value, Sourced):
            out.append(value)
        elif isinstance(value, tuple):
            for item in value:
                out.extend(_all_sourced(item))
    return out


def test_every_sourced_starter_value_is_dated_unless_the_source_is_undated() -> None:
    catalog = load_catalog()
    checked = 0
    for (_kind, _name), prof in catalog.profiles.items():
        for sv in _all_sourced(prof):
            if sv.source is None:
                continue
            checked += 1
            assert sv.as_of is not None or "undated" in sv.source or "COST-REFERENCE" in sv.source
    assert checked > 40


def test_user_file_overrides_builtin_by_name(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text(
        "[device.rpi5]\n"
        'purchase_price = { value = 95, source = "local reseller quote", as_of = 2026-11-01 }\n'
        "life_years = 3\nidle_watts = 2.7\nactive_watts = 9.5\n"
    )
    catalog = load_catalog([tmp_path])
    dev = catalog.device("rpi5")
    assert dev.purchase_price.value == 95
    assert dev.purchase_price.source == "local reseller quote"
    assert dev.origin == str(mine)
    assert catalog.device("jetson-orin-nano-super").purchase_price.value == 249  # others stay


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProfileError) as info:
        load_catalog().device("rpi9")
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    line = info.value.one_line()
    assert "no device profile named 'rpi9'" in line and "rpi5" in line and "\n" not in line


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            "purchase_price = -5\nlife_years = 3\nidle_watts = 1\nactive_watts = 2\n",
            r"field 'purchase_price': value must be >= 0, got -5",
        ),
        (
            "purchase_price = 5\nidle_watts = 1\nactive_watts = 2\n",
            r"field 'life_years': Field required",
        ),
        (
            "purchase_price = 5\nlife_years = 0\nidle_watts = 1\nactive_watts = 2\n",
            r"field 'life_years': value must be > 0",
        ),
        (
            "purchase_price = { value = 5, low = 6 }\n"
            "life_years = 1\nidle_watts = 1\nactive_watts = 2\n",
            "low 6.0 is above the value 5.0",
        ),
        (
            "purchase_price = 5\nlife_years = 1\nidle_watts = 1\nactive_watts = 2\n"
            "residual_value = 9\n",
            "residual_value is above purchase_price",
        ),
        (
            "purchase_price = 5\nlife_years = 1\nidle_watts = 1\nactive_watts = 2\ncolour = 1\n",
            "field 'colour': Extra inputs are not permitted",
        ),
        ("purchase_price = true\nlife_years = 1\nidle_watts = 1\nactive_watts = 2\n", "a number"),
    ],
)
def test_invalid_device_profile_is_one_clear_line(tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[device.mine]\n" + body)
    with pytest.raises(ProfileError, match=match) as info:
        parse_profile_file(path)
    assert info.value.exit_code == 2
    assert "device profile 'mine'" in info.value.one_line()
    assert "\n" not in info.value.one_line()


def test_cloud_profile_needs_the_price_of_its_kind(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[cloud.x]\nkind = "instance"\n')
    with pytest.raises(ProfileError, match="needs price_per_hour"):
        parse_profile_file(path)
    path.write_text(
        '[cloud.x]\nkind = "instance"\nprice_per_hour = 1\n'
        "[[cloud.x.egress_tiers]]\nprice_per_gb = 0.1\n"
        "[[cloud.x.egress_tiers]]\nup_to_gb = 10\nprice_per_gb = 0.1\n"
    )
    with pytest.raises(ProfileError, match="only the last egress tier"):
        parse_profile_file(path)


def test_file_level_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[device.x\n")
    with pytest.raises(ProfileError, match="not valid TOML"):
        parse_profile_file(bad)
    bad.write_text("[gadget.x]\nprice = 1\n")
    with pytest.raises(ProfileError, match="unknown table '\\[gadget\\]'"):
        parse_profile_file(bad)
    with pytest.raises(ProfileError, match="profile path not found"):
        load_catalog([tmp_path / "missing.toml"])


def test_workload_by_path_top_level_or_table_and_by_name(tmp_path: Path) -> None:
    catalog = load_catalog()
    flat = tmp_path / "my.toml"
    flat.write_text("inferences_per_day = 1000\nslo_p99_ms = 50\n")
    wl = load_workload(str(flat), catalog)
    assert wl.name == "my" and wl.inferences_per_day.assumed and wl.slo_p99_ms == 50
    tabled = tmp_path / "t.toml"
    tabled.write_text("[workload.shop]\ninferences_per_day = 5\n")
    assert load_workload(str(tabled), catalog).name == "shop"
    assert load_workload("fraud-scoring", catalog).name == "fraud-scoring"
    with pytest.raises(ProfileError, match="workload file not found"):
        load_workload(str(tmp_path / "nope.toml"), catalog)
    missing = tmp_path / "m.toml"
    missing.write_text("slo_p99_ms = 50\n")
    with pytest.raises(ProfileError, match="field 'inferences_per_day': Field required"):
        load_workload(str(missing), catalog)


def test_sourced_value_forms() -> None:
    dev = DeviceProfile.model_validate(
        {
            "name": "d",
            "purchase_price": {"value": 10, "source": "shop", "as_of": "2026-01-01"},
            "life_years": 2,
            "idle_watts": 1,
            "active_watts": 2,
        }
    )
    assert not dev.purchase_price.assumed and dev.life_years.assumed
    assert dev.maintenance_share.assumed and dev.maintenance_share.value == 0
    api = CloudProfile.model_validate({"name": "a", "kind": "api", "price_per_million_requests": 3})
    assert api.price_per_million_requests is not None


def test_token_prices_come_in_pairs_on_api_profiles(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[cloud.x]\nkind = "api"\nprice_per_million_input_tokens = 1\n')
    with pytest.raises(ProfileError, match="both input and output token prices"):
        parse_profile_file(path)
    path.write_text(
        '[cloud.x]\nkind = "instance"\nprice_per_hour = 1\n'
        "price_per_million_input_tokens = 1\nprice_per_million_output_tokens = 2\n"
    )
    with pytest.raises(ProfileError, match="api profiles only"):
        parse_profile_file(path)
    path.write_text(
        '[cloud.x]\nkind = "api"\n'
        "price_per_million_input_tokens = 1\nprice_per_million_output_tokens = 2\n"
    )
    (api,) = parse_profile_file(path)
    assert isinstance(api, CloudProfile) and api.price_per_million_requests is None


def test_egress_tier_sources_match_their_bounds() -> None:
    # COST-REFERENCE gives AWS prices up to 50 TB/month and Azure's up to 10 TB; a tier above
    # a stated range is an assumption (no source), never labelled with a narrower range's text
    catalog = load_catalog()
    checked = 0
    for name in catalog.names(ProfileKind.CLOUD):
        tiers = catalog.cloud(name).egress_tiers
        for t in tiers:
            src = t.price_per_gb.source or ""
            if "10-50 TB" in src:
                assert t.up_to_gb == 51200, name
            if "first 10 TB" in src:
                assert t.up_to_gb == 10240, name
        if (
            tiers
            and tiers[-1].up_to_gb is None
            and "10+ TiB" not in (tiers[-1].price_per_gb.source or "")
        ):
            assert tiers[-1].price_per_gb.assumed, name
            checked += 1
    assert checked >= 7
    t4 = catalog.cloud("gpu-t4-ondemand").egress_tiers
    assert [t.up_to_gb for t in t4] == [100, 10240, 51200, None]
    assert [t.price_per_gb.assumed for t in t4] == [False, False, False, True]


def test_scaling_mode_and_billing_terms(tmp_path: Path) -> None:
    catalog = load_catalog()
    auto = catalog.cloud("gpu-t4-autoscale")
    assert auto.scaling is ScalingMode.AUTOSCALE
    # COST-REFERENCE states no billing terms: per-second with a 60 s minimum, assumed
    assert auto.billing_granularity_s.value == 1 and auto.billing_granularity_s.assumed
    assert auto.minimum_billed_s.value == 60 and auto.minimum_billed_s.assumed
    assert catalog.cloud("gpu-t4-ondemand").scaling is ScalingMode.ALWAYS_ON
    assert catalog.cloud("gpu-t4-reserved").billing_granularity_s.value == 3600
    # a user profile without the fields: always-on, hourly, no minimum, all assumed
    bare = CloudProfile(name="x", kind=CloudKind.INSTANCE, price_per_hour=Sourced(value=1.0))
    assert bare.scaling is ScalingMode.ALWAYS_ON
    assert bare.billing_granularity_s.value == 3600 and bare.minimum_billed_s.value == 0
    for body, match in (
        ('kind = "api"\nprice_per_million_requests = 1\nscaling = "autoscale"\n', "instance"),
        (
            'kind = "instance"\nprice_per_hour = 1\npricing = "reserved"\nscaling = "autoscale"\n',
            "reservation is billed every hour",
        ),
        ('kind = "instance"\nprice_per_hour = 1\nbilling_granularity_s = 0\n', "must be > 0"),
    ):
        f = tmp_path / "c.toml"
        f.write_text("[cloud.x]\n" + body)
        with pytest.raises(ProfileError, match=match):
            load_catalog([f]).cloud("x")
