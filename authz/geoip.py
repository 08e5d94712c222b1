"""Country and continent of an IP address, from a MaxMind ``.mmdb`` database (GeoLite2 Country or City)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import maxminddb

#: Distinct client addresses remembered; the hot path looks up the client of every request.
CACHE_SIZE = 65536


@dataclass(frozen=True, slots=True)
class GeoLocation:
    """Where an address is, as far as the database knows; every field is ``None`` when unknown."""

    country_code: str | None = None  # ISO 3166-1 alpha-2, e.g. "GB"
    country_name: str | None = None  # English, e.g. "United Kingdom"
    continent_code: str | None = None  # e.g. "EU"
    continent_name: str | None = None  # English, e.g. "Europe"

    EMPTY: ClassVar[GeoLocation]

    @property
    def known(self) -> bool:
        return self.country_code is not None or self.continent_code is not None


GeoLocation.EMPTY = GeoLocation()


def _english(record: Mapping[str, Any] | None, code_key: str) -> tuple[str | None, str | None]:
    if not isinstance(record, Mapping):
        return None, None
    names = record.get("names")
    name = names.get("en") if isinstance(names, Mapping) else None
    code = record.get(code_key)
    return (code if isinstance(code, str) else None), (name if isinstance(name, str) else None)


class GeoIP:
    """A read-only MaxMind database with a per-address cache; without a database every answer is empty."""

    def __init__(self, reader: maxminddb.Reader | None) -> None:
        self._reader = reader
        # A cache per instance (not per class) so closing or replacing a database drops its answers.
        self._cached = lru_cache(maxsize=CACHE_SIZE)(self._lookup)

    @classmethod
    def open(cls, path: Path | None) -> GeoIP:
        """Open the database at ``path``; ``None`` gives a GeoIP that knows nothing."""
        return cls(maxminddb.open_database(str(path)) if path is not None else None)

    def lookup(self, ip: str) -> GeoLocation:
        """The location of ``ip``; :attr:`GeoLocation.EMPTY` when unknown or not an address."""
        if self._reader is None:
            return GeoLocation.EMPTY
        return self._cached(ip)

    def _lookup(self, ip: str) -> GeoLocation:
        reader = self._reader
        if reader is None:
            return GeoLocation.EMPTY
        # Parsed here rather than by the reader, whose C extension also takes shorthand like "1.2.3".
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return GeoLocation.EMPTY
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # Not every database aliases ::ffff:0:0/96 to its IPv4 tree.
            address = address.ipv4_mapped
        try:
            record = reader.get(address)
        except ValueError:  # IPv6 in an IPv4-only database, or a closed reader
            return GeoLocation.EMPTY
        if not isinstance(record, Mapping):
            return GeoLocation.EMPTY
        # "country" is where the address is used; "registered_country" (where its owner registered it)
        # is the only answer for some anycast and satellite ranges.
        country = record.get("country") or record.get("registered_country")
        country_code, country_name = _english(country, "iso_code")
        continent_code, continent_name = _english(record.get("continent"), "code")
        location = GeoLocation(country_code, country_name, continent_code, continent_name)
        return location if location != GeoLocation.EMPTY else GeoLocation.EMPTY

    def close(self) -> None:
        """Close the database; later lookups answer :attr:`GeoLocation.EMPTY`."""
        reader, self._reader = self._reader, None
        self._cached.cache_clear()
        if reader is not None:
            reader.close()


__all__ = ["CACHE_SIZE", "GeoIP", "GeoLocation"]
