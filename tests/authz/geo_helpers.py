"""A tiny MaxMind database written by the tests, so geo behaviour (IPv6 included) is pinned by our data.

Import it from any test: ``from tests.authz.geo_helpers import write_test_mmdb, TEST_LOCATIONS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from authz.geoip import GeoLocation

#: network → where the test database puts it (English names, ISO codes, as GeoLite2 does).
TEST_LOCATIONS: dict[str, GeoLocation] = {
    "81.2.69.0/24": GeoLocation("GB", "United Kingdom", "EU", "Europe"),
    "2001:db8:1::/48": GeoLocation("JP", "Japan", "AS", "Asia"),
    "175.16.199.0/24": GeoLocation("CN", "China", "AS", "Asia"),
    "1.0.0.0/24": GeoLocation("AU", "Australia", "OC", "Oceania"),
    "164.116.47.0/24": GeoLocation("US", "United States", "NA", "North America"),
}


def geolite2_record(location: GeoLocation, *, country_key: str = "country") -> dict[str, Any]:
    """The GeoLite2 record for ``location``; ``country_key="registered_country"`` leaves ``country`` out."""
    return {
        "continent": {"code": location.continent_code, "names": {"en": location.continent_name}},
        country_key: {"iso_code": location.country_code, "names": {"en": location.country_name}},
    }


def write_test_mmdb(path: Path, records: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Write an IPv6 (IPv4-compatible) ``.mmdb`` at ``path``; default content is :data:`TEST_LOCATIONS`."""
    if records is None:
        records = {network: geolite2_record(location) for network, location in TEST_LOCATIONS.items()}
    writer = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country", languages=["en"]
    )
    for network, record in records.items():
        writer.insert_network(IPSet([network]), dict(record))
    writer.to_db_file(str(path))
    return path
