"""GeoIP lookups against the real GeoLite2 database (2018 build) and a test-made IPv6 database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from geolite2 import geolite2

from authz.geoip import GeoIP, GeoLocation
from tests.authz.geo_helpers import TEST_LOCATIONS, geolite2_record, write_test_mmdb

#: The GeoLite2 City database shipped by maxminddb-geolite2 (build of 2018-07-03); City records carry the
#: same country and continent fields as Country ones.
GEOLITE2_PATH = Path(geolite2.filename)


@pytest.fixture(scope="module")
def geolite() -> Iterator[GeoIP]:
    geo = GeoIP.open(GEOLITE2_PATH)
    yield geo
    geo.close()


@pytest.fixture
def test_db(tmp_path: Path) -> Iterator[GeoIP]:
    geo = GeoIP.open(write_test_mmdb(tmp_path / "test.mmdb"))
    yield geo
    geo.close()


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("8.8.8.8", GeoLocation("US", "United States", "NA", "North America")),
        ("2001:4860:4860::8888", GeoLocation("US", "United States", "NA", "North America")),
        ("81.2.69.160", GeoLocation("GB", "United Kingdom", "EU", "Europe")),
        ("1.1.1.1", GeoLocation("AU", "Australia", "OC", "Oceania")),
        ("133.1.1.1", GeoLocation("JP", "Japan", "AS", "Asia")),
        ("200.160.2.3", GeoLocation("BR", "Brazil", "SA", "South America")),
        ("41.0.0.1", GeoLocation("ZA", "South Africa", "AF", "Africa")),
        ("::ffff:8.8.8.8", GeoLocation("US", "United States", "NA", "North America")),
    ],
)
def test_geolite2_knows_well_known_addresses(geolite: GeoIP, ip: str, expected: GeoLocation) -> None:
    assert geolite.lookup(ip) == expected


@pytest.mark.parametrize("ip", ["10.0.0.1", "127.0.0.1", "192.168.1.1", "::1"])
def test_private_addresses_are_unknown(geolite: GeoIP, ip: str) -> None:
    assert geolite.lookup(ip) is GeoLocation.EMPTY


@pytest.mark.parametrize("ip", ["", "garbage", "1.2.3", "999.1.1.1", "1.2.3.4:80", "2001:db8::zz"])
def test_invalid_addresses_are_unknown(geolite: GeoIP, ip: str) -> None:
    assert geolite.lookup(ip) is GeoLocation.EMPTY


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("81.2.69.160", "81.2.69.0/24"),
        ("2001:db8:1::5", "2001:db8:1::/48"),
        ("2001:db8:1:ffff:ffff:ffff:ffff:ffff", "2001:db8:1::/48"),
        ("175.16.199.1", "175.16.199.0/24"),
        ("1.0.0.255", "1.0.0.0/24"),
        ("164.116.47.0", "164.116.47.0/24"),
        ("::ffff:81.2.69.1", "81.2.69.0/24"),
    ],
)
def test_test_database_answers_ipv4_and_ipv6(test_db: GeoIP, ip: str, network: str) -> None:
    assert test_db.lookup(ip) == TEST_LOCATIONS[network]


@pytest.mark.parametrize("ip", ["2001:db8:2::1", "8.8.8.8", "81.2.70.1"])
def test_test_database_misses_are_unknown(test_db: GeoIP, ip: str) -> None:
    assert test_db.lookup(ip) is GeoLocation.EMPTY


def test_registered_country_stands_in_for_a_missing_country(tmp_path: Path) -> None:
    where = GeoLocation("SE", "Sweden", "EU", "Europe")
    path = write_test_mmdb(
        tmp_path / "registered.mmdb",
        {"192.0.2.0/24": geolite2_record(where, country_key="registered_country")},
    )
    geo = GeoIP.open(path)
    try:
        assert geo.lookup("192.0.2.10") == where
    finally:
        geo.close()


def test_without_a_database_nothing_is_known() -> None:
    geo = GeoIP.open(None)
    assert geo.lookup("8.8.8.8") is GeoLocation.EMPTY
    geo.close()


def test_lookups_are_cached_and_close_forgets_them(tmp_path: Path) -> None:
    geo = GeoIP.open(write_test_mmdb(tmp_path / "cache.mmdb"))
    first = geo.lookup("81.2.69.1")
    assert geo.lookup("81.2.69.1") is first
    geo.close()
    assert geo.lookup("81.2.69.1") is GeoLocation.EMPTY
