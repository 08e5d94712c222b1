"""Restriction matching over the real Casbin model: the compiled indexes must agree with Casbin itself."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz.geoip import GeoLocation
from authz.restrictions import (
    CompiledRestrictions,
    RestrictionMatch,
    build_restriction_enforcer,
    reference_match,
)
from authz.settings import PROJECT_ROOT
from identity.models import (
    MAINTENANCE_DEFAULT_CODE,
    RESTRICTION_CATEGORIES,
    RESTRICTION_DEFAULT_CODES,
    Restriction,
)

NOWHERE = GeoLocation.EMPTY
UK = GeoLocation("GB", "United Kingdom", "EU", "Europe")
JAPAN = GeoLocation("JP", "Japan", "AS", "Asia")
USA = GeoLocation("US", "United States", "NA", "North America")
BRAZIL = GeoLocation("BR", "Brazil", "SA", "South America")
UKRAINE = GeoLocation("UA", "Ukraine", "EU", "Europe")


def row(
    category: str, scope: str, value: str, id: int | None = None, code: int | None = None, **kw: str
) -> Restriction:
    """A restriction with the repository's default code for its category and scope."""
    if code is None:
        code = MAINTENANCE_DEFAULT_CODE if category == "maintenance" else RESTRICTION_DEFAULT_CODES[scope]
    return Restriction(category, scope, value, code, id=id, **kw)


def match(rows: Sequence[Restriction], ip: str, location: GeoLocation = NOWHERE) -> RestrictionMatch | None:
    """The compiled answer, checked against Casbin's on every call."""
    enforcer = build_restriction_enforcer(rows)
    compiled = CompiledRestrictions.from_enforcer(enforcer).match(ip, location)
    assert compiled == reference_match(enforcer, ip, location)
    return compiled


def hit(category: str, scope: str, id: int | None, code: int | None = None) -> RestrictionMatch:
    if code is None:
        code = MAINTENANCE_DEFAULT_CODE if category == "maintenance" else RESTRICTION_DEFAULT_CODES[scope]
    return RestrictionMatch(category, scope, code, id)


# --- precedence and order --------------------------------------------------------------------------------


@pytest.mark.parametrize("present", [RESTRICTION_CATEGORIES[i:] for i in range(len(RESTRICTION_CATEGORIES))])
def test_category_precedence_is_whitelist_maintenance_blacklist_blocklogin(present: tuple[str, ...]) -> None:
    # Later categories get lower ids, so id order cannot be what decides.
    rows = [row(category, "ip", "1.2.3.4", id=10 - n) for n, category in enumerate(present)]
    assert match(rows, "1.2.3.4") == hit(present[0], "ip", 10)


def test_whitelisted_client_is_reported_as_whitelisted_even_if_blacklisted() -> None:
    rows = [row("blacklist", "all", "all", id=1), row("whitelist", "ip_subnet", "1.2.3.0/24", id=2)]
    assert match(rows, "1.2.3.4") == hit("whitelist", "ip_subnet", 2)
    assert match(rows, "1.2.4.4") == hit("blacklist", "all", 1)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("all", "all"), ("ip", "81.2.69.160")),
        (("ip", "81.2.69.160"), ("ip_subnet", "81.2.69.0/24")),
        (("ip_subnet", "81.2.69.0/24"), ("continent", "Europe")),
        (("continent", "EU"), ("country", "GB")),
    ],
    ids=["all before ip", "ip before ip_subnet", "ip_subnet before continent", "continent before country"],
)
def test_scope_order_within_a_category(first: tuple[str, str], second: tuple[str, str]) -> None:
    rows = [row("blacklist", *second, id=1), row("blacklist", *first, id=2)]
    assert match(rows, "81.2.69.160", UK) == hit("blacklist", first[0], 2)


def test_lowest_id_wins_within_a_scope_whatever_the_input_order() -> None:
    rows = [
        row("blacklist", "ip_subnet", "10.0.0.0/8", id=9, code=409),
        row("blacklist", "ip_subnet", "10.1.2.0/24", id=5, code=405),
        row("blacklist", "ip_subnet", "10.1.0.0/16", id=3, code=403),
    ]
    assert match(rows, "10.1.2.3") == hit("blacklist", "ip_subnet", 3, 403)
    assert match(rows[::-1], "10.1.2.3") == hit("blacklist", "ip_subnet", 3, 403)
    assert match(rows, "10.2.0.1") == hit("blacklist", "ip_subnet", 9, 409)


def test_lowest_id_wins_between_code_and_name_of_one_place() -> None:
    rows = [
        row("blacklist", "country", "japan", id=4, code=404),
        row("blacklist", "country", "JP", id=7, code=407),
    ]
    assert match(rows, "133.1.1.1", JAPAN) == hit("blacklist", "country", 4, 404)


def test_rows_without_id_come_after_numbered_rows_in_given_order() -> None:
    rows = [
        row("blacklist", "ip", "1.2.3.4", code=461),
        row("blacklist", "ip", "1.2.3.4", code=462),
        row("blacklist", "ip", "1.2.3.4", id=50, code=450),
    ]
    assert match(rows, "1.2.3.4") == hit("blacklist", "ip", 50, 450)
    assert match(rows[:2], "1.2.3.4") == hit("blacklist", "ip", None, 461)


def test_disabled_restrictions_are_ignored() -> None:
    rows = [
        row("whitelist", "ip", "1.2.3.4", id=1, state="disabled"),
        row("blacklist", "ip", "1.2.3.4", id=2),
        row("blacklist", "all", "all", id=3, state="disabled"),
    ]
    assert match(rows, "1.2.3.4") == hit("blacklist", "ip", 2)
    assert match(rows, "5.6.7.8") is None


def test_duplicate_rows_are_harmless() -> None:
    rows = [row("blacklist", "ip", "1.2.3.4"), row("blacklist", "ip", "1.2.3.4")]
    assert match(rows, "1.2.3.4") == hit("blacklist", "ip", None)


# --- every scope -----------------------------------------------------------------------------------------

# (scope, value, client ip, location, matches?)
SCOPE_CASES = [
    ("all", "all", "1.2.3.4", NOWHERE, True),
    ("all", "whatever", "2001:db8::1", NOWHERE, True),
    ("ip", "1.2.3.4", "1.2.3.4", NOWHERE, True),
    ("ip", "1.2.3.4", "1.2.3.5", NOWHERE, False),
    ("ip", " 1.2.3.4 ", "1.2.3.4", NOWHERE, True),
    ("ip", "::ffff:1.2.3.4", "1.2.3.4", NOWHERE, True),
    ("ip", "1.2.3.4", "::ffff:1.2.3.4", NOWHERE, True),
    ("ip", "2001:db8::1", "2001:db8::1", NOWHERE, True),
    ("ip", "2001:DB8:0:0:0:0:0:1", "2001:db8::1", NOWHERE, True),
    ("ip", "2001:db8::1", "2001:db8::2", NOWHERE, False),
    ("ip", "0.0.0.1", "::1", NOWHERE, False),
    ("ip", "1.2.3.0/24", "1.2.3.4", NOWHERE, False),
    ("ip", "not an ip", "1.2.3.4", NOWHERE, False),
    ("ip", "", "1.2.3.4", NOWHERE, False),
    ("ip", "1.2.3.4", "garbage", NOWHERE, False),
    ("ip_subnet", "1.2.3.0/24", "1.2.3.4", NOWHERE, True),
    ("ip_subnet", "1.2.3.0/24", "1.2.4.4", NOWHERE, False),
    ("ip_subnet", "1.2.3.77/24", "1.2.3.4", NOWHERE, True),
    ("ip_subnet", "1.2.3.4/32", "1.2.3.4", NOWHERE, True),
    ("ip_subnet", "1.2.3.4", "1.2.3.4", NOWHERE, True),
    ("ip_subnet", "0.0.0.0/0", "8.8.8.8", NOWHERE, True),
    ("ip_subnet", "0.0.0.0/0", "2001:db8::1", NOWHERE, False),
    ("ip_subnet", "1.2.3.0/24", "::ffff:1.2.3.4", NOWHERE, True),
    ("ip_subnet", "2001:db8::/32", "2001:db8:ffff::1", NOWHERE, True),
    ("ip_subnet", "2001:db8::/32", "2001:db9::1", NOWHERE, False),
    ("ip_subnet", "::/0", "1.2.3.4", NOWHERE, False),
    ("ip_subnet", "1.2.3.0/33", "1.2.3.4", NOWHERE, False),
    ("ip_subnet", "garbage", "1.2.3.4", NOWHERE, False),
    ("continent", "Europe", "81.2.69.160", UK, True),
    ("continent", "europe", "81.2.69.160", UK, True),
    ("continent", "EU", "81.2.69.160", UK, True),
    ("continent", "eu", "81.2.69.160", UK, True),
    ("continent", "Asia", "81.2.69.160", UK, False),
    ("continent", "Europe", "10.0.0.1", NOWHERE, False),
    ("continent", "", "10.0.0.1", NOWHERE, False),
    ("country", "United Kingdom", "81.2.69.160", UK, True),
    ("country", "UNITED KINGDOM", "81.2.69.160", UK, True),
    ("country", "gb", "81.2.69.160", UK, True),
    ("country", "GB", "2001:db8:1::1", UK, True),
    ("country", "Europe", "81.2.69.160", UK, False),
    ("country", "GBR", "81.2.69.160", UK, False),
    ("country", "GB", "10.0.0.1", NOWHERE, False),
    ("country", "", "10.0.0.1", NOWHERE, False),
]


@pytest.mark.parametrize(("scope", "value", "ip", "location", "matches"), SCOPE_CASES)
def test_scope_rule(scope: str, value: str, ip: str, location: GeoLocation, matches: bool) -> None:
    expected = hit("blacklist", scope, 1) if matches else None
    assert match([row("blacklist", scope, value, id=1)], ip, location) == expected


def test_unknown_geo_never_matches_any_geo_value() -> None:
    rows = [row("blacklist", scope, value, id=n) for n, (scope, value) in enumerate(
        [("country", ""), ("country", "None"), ("continent", ""), ("continent", "unknown")], start=1
    )]
    assert match(rows, "10.0.0.1", NOWHERE) is None
    assert match(rows, "10.0.0.1", GeoLocation(country_code="GB")) is None


def test_codes_and_ids_come_from_the_rows() -> None:
    rows = [row("maintenance", "ip_subnet", "2001:db8::/48", id=42, code=503)]
    assert match(rows, "2001:db8::5") == RestrictionMatch("maintenance", "ip_subnet", 503, 42)


# --- Barong's seed restrictions (barong-behavior.md §11) ------------------------------------------------

SEEDS = [
    row("whitelist", "country", "UA", id=1, state="disabled"),
    row("maintenance", "all", "all", id=2, state="disabled"),
    row("blacklist", "ip", "164.116.47.255", id=3, code=433, state="disabled"),
    row("blacklist", "ip_subnet", "164.116.47.0/24", id=4, code=434, state="disabled"),
    row("blacklist", "country", "USA", id=5, code=435, state="disabled"),
    row("blacklist", "continent", "SA", id=6, code=436, state="disabled"),
]


def enabled(rows: Sequence[Restriction], *ids: int) -> list[Restriction]:
    return [Restriction(r.category, r.scope, r.value, r.code, id=r.id) if r.id in ids else r for r in rows]


# (case, enabled seed ids, ip, location, expected)
SEED_CASES = [
    ("as shipped: all disabled", (), "164.116.47.255", USA, None),
    ("blacklisted ip", (3, 4, 5, 6), "164.116.47.255", USA, hit("blacklist", "ip", 3, 433)),
    ("blacklisted subnet", (3, 4, 5, 6), "164.116.47.1", USA, hit("blacklist", "ip_subnet", 4, 434)),
    ("'USA' is neither a code nor a name", (3, 4, 5, 6), "8.8.8.8", USA, None),
    ("South America by code", (3, 4, 5, 6), "200.160.2.3", BRAZIL, hit("blacklist", "continent", 6, 436)),
    ("elsewhere", (3, 4, 5, 6), "81.2.69.160", UK, None),
    ("maintenance catches everyone", (1, 2, 3, 4, 5, 6), "164.116.47.255", USA, hit("maintenance", "all", 2)),
    ("Ukraine whitelisted", (1, 2, 3, 4, 5, 6), "31.43.0.1", UKRAINE, hit("whitelist", "country", 1)),
]


@pytest.mark.parametrize(
    ("ids", "ip", "location", "expected"), [c[1:] for c in SEED_CASES], ids=[c[0] for c in SEED_CASES]
)
def test_barong_seed_restrictions(
    ids: tuple[int, ...], ip: str, location: GeoLocation, expected: RestrictionMatch | None
) -> None:
    assert match(enabled(SEEDS, *ids), ip, location) == expected


# --- the compiled form -----------------------------------------------------------------------------------


def test_empty_restrictions_match_nothing() -> None:
    assert CompiledRestrictions.EMPTY.is_empty
    assert CompiledRestrictions.EMPTY.match("1.2.3.4", UK) is None
    compiled = CompiledRestrictions.from_enforcer(build_restriction_enforcer([]))
    assert compiled.is_empty and len(compiled) == 0
    one = CompiledRestrictions.from_enforcer(build_restriction_enforcer([row("blocklogin", "all", "")]))
    assert not one.is_empty and len(one) == 1


@pytest.mark.parametrize(
    ("scope", "value", "uses_location"),
    [("all", "all", False), ("ip", "1.2.3.4", False), ("ip_subnet", "::/0", False),
     ("continent", "EU", True), ("country", "Japan", True)],
)  # fmt: skip
def test_only_geo_rows_need_a_location(scope: str, value: str, uses_location: bool) -> None:
    enforcer = build_restriction_enforcer([row("blacklist", scope, value)])
    assert CompiledRestrictions.from_enforcer(enforcer).uses_location is uses_location


def test_model_path_may_be_given() -> None:
    model = PROJECT_ROOT / "policies" / "restrictions_model.conf"
    enforcer = build_restriction_enforcer([row("blacklist", "ip", "1.2.3.4", id=1)], model_path=model)
    assert reference_match(enforcer, "1.2.3.4", NOWHERE) == hit("blacklist", "ip", 1)


def test_ten_thousand_restrictions() -> None:
    rows = [row("blacklist", "ip", f"10.{n >> 8}.{n & 255}.1", id=n + 100) for n in range(8000)]
    subnets = (f"172.{16 + (n >> 8)}.{n & 255}.0/24" for n in range(1993))
    rows += [row("blacklist", "ip_subnet", subnet, id=n + 20_000) for n, subnet in enumerate(subnets)]
    rows += [row("blocklogin", "country", "Japan", id=5)]
    rows += [row("maintenance", "ip_subnet", "2001:db8::/32", id=7)]
    rows += [row("blacklist", "ip_subnet", "10.0.0.0/8", id=99_999, code=499)]
    rows += [row("whitelist", "ip", f"10.{n}.0.1", id=n + 1) for n in range(4)]
    rows += [row("maintenance", "all", "x", id=1000, state="disabled")]
    compiled = CompiledRestrictions.from_enforcer(build_restriction_enforcer(rows))
    assert len(compiled) == 10_000
    assert compiled.match("10.31.63.1", NOWHERE) == hit("blacklist", "ip", 31 * 256 + 63 + 100)
    assert compiled.match("10.31.63.2", NOWHERE) == hit("blacklist", "ip_subnet", 99_999, 499)
    assert compiled.match("172.20.3.9", NOWHERE) == hit("blacklist", "ip_subnet", 4 * 256 + 3 + 20_000)
    assert compiled.match("10.2.0.1", JAPAN) == hit("whitelist", "ip", 3)
    assert compiled.match("2001:db8::1", JAPAN) == hit("maintenance", "ip_subnet", 7)
    assert compiled.match("203.0.113.1", JAPAN) == hit("blocklogin", "country", 5)
    assert compiled.match("203.0.113.1", UK) is None


# --- property: the compiled form answers as Casbin does ------------------------------------------------
# Values come from a small universe so that several restrictions of one category often hit the same
# client: that is where scope order and policy order decide, and where a wrong index would show.

IPS = [
    "10.0.0.1", "10.0.0.2", "10.0.1.1", "10.1.0.1", "192.0.2.1",
    "2001:db8::1", "2001:db8::2", "2001:db8:1::1", "2001:db8:1:2::1", "::ffff:10.0.0.1",
]  # fmt: skip
SUBNETS = [
    "10.0.0.0/24", "10.0.0.0/16", "10.0.0.0/8", "10.0.0.1/32", "10.0.0.7/24", "10.0.1.0/24", "0.0.0.0/0",
    "2001:db8::/32", "2001:db8::/64", "2001:db8:1::/48", "::/0", "::ffff:10.0.0.0/104", "10.0.0.0/33", "junk",
]  # fmt: skip
COUNTRIES = [("GB", "United Kingdom"), ("JP", "Japan")]
CONTINENTS = [("EU", "Europe"), ("AS", "Asia")]
#: "all" matches everyone, so it is drawn rarely: otherwise it would hide the other scopes' answers.
SCOPE_WEIGHTS = ["all"] + ["ip"] * 8 + ["ip_subnet"] * 12 + ["continent"] * 8 + ["country"] * 8


def _any_case(values: list[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(values), st.sampled_from([str, str.lower, str.upper, str.title])).map(
        lambda pair: pair[1](pair[0])
    )


def _places(pairs: list[tuple[str, str]]) -> st.SearchStrategy[str]:
    return _any_case([text for pair in pairs for text in pair] * 3 + ["", "USA"])


VALUES = {
    "all": st.sampled_from(["all", ""]),
    "ip": st.sampled_from([*IPS, "10.0.0.256", "", "10.0.0.0/24"]),
    "ip_subnet": st.sampled_from(SUBNETS),
    "continent": _places(CONTINENTS),
    "country": _places(COUNTRIES),
}


@st.composite
def restriction_sets(draw: st.DrawFn) -> list[Restriction]:
    # A few categories per example, so that each holds several restrictions.
    categories = draw(st.lists(st.sampled_from(RESTRICTION_CATEGORIES), min_size=1, max_size=3, unique=True))
    rows = st.builds(
        lambda category, scope_value, code, rid, state: Restriction(
            category, scope_value[0], scope_value[1], code, state=state, id=rid
        ),
        st.sampled_from(categories),
        st.sampled_from(SCOPE_WEIGHTS).flatmap(lambda scope: st.tuples(st.just(scope), VALUES[scope])),
        st.integers(400, 499),
        st.one_of(st.none(), st.integers(1, 40)),
        st.sampled_from(["enabled", "enabled", "enabled", "disabled"]),
    )
    return draw(st.lists(rows, min_size=2, max_size=24))


locations = st.one_of(
    st.just(NOWHERE),
    st.builds(
        lambda country, continent: GeoLocation(country[0], country[1], continent[0], continent[1]),
        st.sampled_from(COUNTRIES),
        st.sampled_from(CONTINENTS),
    ),
    st.sampled_from(COUNTRIES).map(lambda pair: GeoLocation(country_code=pair[0], country_name=pair[1])),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=restriction_sets(),
    queries=st.lists(st.tuples(st.sampled_from([*IPS, "garbage"]), locations), min_size=1, max_size=6),
)
def test_compiled_match_equals_casbin(
    rows: list[Restriction], queries: list[tuple[str, GeoLocation]]
) -> None:
    enforcer = build_restriction_enforcer(rows)
    compiled = CompiledRestrictions.from_enforcer(enforcer)
    for ip, location in queries:
        assert compiled.match(ip, location) == reference_match(enforcer, ip, location)
