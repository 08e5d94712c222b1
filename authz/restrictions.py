"""Traffic restrictions: which whitelist / maintenance / blacklist / blocklogin row applies to a client.

Casbin holds the model (``policies/restrictions_model.conf``) and the policy (one line per enabled
restriction).  Asking Casbin costs one matcher evaluation per policy line, so the hot path instead uses
:class:`CompiledRestrictions`, hash indexes built from the same policy lines that give the same answer in
constant time; :func:`reference_match` asks Casbin itself and is what the tests compare against.

Order of the answer (Barong, barong-behavior.md §2.3): categories in precedence order (whitelist,
maintenance, blacklist, blocklogin); within a category, scopes in Barong's code order (all, ip,
ip_subnet, continent, country); within a scope, the lowest id (first policy line).  A whitelist hit is
returned as such: the caller exempts that client from everything else.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import casbin  # type: ignore[import-untyped]  # pycasbin ships no type hints

from authz.geoip import GeoLocation
from authz.settings import Settings
from identity.models import RESTRICTION_CATEGORIES, RESTRICTION_SCOPES, Restriction

MODEL_FILE = "restrictions_model.conf"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class RestrictionMatch:
    """The restriction that applies to a client: its category, scope, HTTP status and row id."""

    category: str
    scope: str
    code: int
    restriction_id: int | None = None


# --- value parsing, shared by the Casbin matcher function and the compiled indexes ---------------------


@lru_cache(maxsize=65536)
def _address(text: str) -> Address | None:
    """``text`` as an address, IPv4-mapped IPv6 as IPv4 and without an IPv6 zone; ``None`` if invalid.

    Cached because the hot path parses the client of every request and clients repeat.
    """
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:  # a zone names a local interface, not a different host
            return ipaddress.IPv6Address(int(address))
    return address


@lru_cache(maxsize=4096)
def _network(text: str) -> Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _same_place(value: str, code: str, name: str) -> bool:
    wanted = value.strip().lower()
    return bool(wanted) and (wanted == code.lower() or wanted == name.lower())


def restriction_matches(
    scope: str,
    value: str,
    ip: str,
    country_code: str,
    country_name: str,
    continent_code: str,
    continent_name: str,
) -> bool:
    """Whether one restriction (``scope``, ``value``) covers the client; ``restrictionMatch`` in Casbin.

    Geo fields are ``""`` when unknown, and an unknown place matches nothing.
    """
    if scope == "all":
        return True
    if scope == "ip":
        client, target = _address(ip), _address(value)
        return client is not None and client == target
    if scope == "ip_subnet":
        client, network = _address(ip), _network(value)
        return client is not None and network is not None and client in network
    if scope == "continent":
        return _same_place(value, continent_code, continent_name)
    if scope == "country":
        return _same_place(value, country_code, country_name)
    return False


# --- the policy store ----------------------------------------------------------------------------------


def _policy_line(restriction: Restriction) -> list[str]:
    rid = "" if restriction.id is None else str(restriction.id)
    return [restriction.category, restriction.scope, restriction.value, str(int(restriction.code)), rid]


def build_restriction_enforcer(
    restrictions: Iterable[Restriction], model_path: Path | None = None
) -> casbin.Enforcer:
    """A Casbin enforcer holding one policy line per enabled restriction, in ascending id order.

    Rows without an id keep their given order, after the others.  ``model_path`` defaults to
    ``policies/restrictions_model.conf``.  Raises ``ValueError`` if a row's code is not a number.
    """
    path = model_path if model_path is not None else Settings().policies_dir / MODEL_FILE
    enforcer = casbin.Enforcer(str(path), enable_log=False)
    enforcer.add_function("restrictionMatch", restriction_matches)
    ordered = sorted(
        (r for r in restrictions if r.enabled), key=lambda r: (r.id is None, r.id if r.id is not None else 0)
    )
    lines: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for restriction in ordered:
        line = _policy_line(restriction)
        # Casbin refuses a whole batch holding a duplicate line; an identical later line never wins anyway.
        if tuple(line) not in seen:
            seen.add(tuple(line))
            lines.append(line)
    if lines:
        enforcer.add_policies(lines)
    return enforcer


def _match_from_line(line: list[str]) -> RestrictionMatch:
    category, scope, _value, code, rid = line[:5]
    return RestrictionMatch(category, scope, int(code), int(rid) if rid else None)


def reference_match(enforcer: casbin.Enforcer, ip: str, location: GeoLocation) -> RestrictionMatch | None:
    """The restriction for ``ip`` at ``location`` computed by Casbin alone (slow; for tests and audits)."""
    geo = (
        location.country_code or "",
        location.country_name or "",
        location.continent_code or "",
        location.continent_name or "",
    )
    for category in RESTRICTION_CATEGORIES:
        for scope in RESTRICTION_SCOPES:
            allowed, line = enforcer.enforce_ex(category, scope, ip, *geo)
            if allowed:
                return _match_from_line(line)
    return None


# --- the hot-path form ---------------------------------------------------------------------------------

#: (policy position, match): the position decides between hits of one scope found in different indexes.
_Entry = tuple[int, RestrictionMatch]


@dataclass(slots=True)
class _CategoryIndex:
    """The restrictions of one category, indexed by scope."""

    all: RestrictionMatch | None = None
    ips: dict[tuple[int, int], RestrictionMatch] = field(default_factory=dict)  # (version, int) → first
    # per IP version: one (netmask, {network int: entry}) table per prefix length in use
    subnets: dict[int, tuple[tuple[int, dict[int, _Entry]], ...]] = field(default_factory=dict)
    continents: dict[str, _Entry] = field(default_factory=dict)  # lowercased value → first
    countries: dict[str, _Entry] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.all is None and not (self.ips or self.subnets or self.continents or self.countries)


def _place(index: dict[str, _Entry], code: str | None, name: str | None) -> RestrictionMatch | None:
    if not index:
        return None
    by_code = index.get(code.lower()) if code else None
    by_name = index.get(name.lower()) if name else None
    if by_name is None or (by_code is not None and by_code[0] < by_name[0]):
        return by_code[1] if by_code is not None else None
    return by_name[1]


class CompiledRestrictions:
    """Restriction policy lines compiled into hash indexes: :meth:`match` costs the same for 10 or 10,000.

    Built from a Casbin enforcer's policy (:meth:`from_enforcer`); immutable, so a new policy means a new
    instance swapped in whole.
    """

    EMPTY: ClassVar[CompiledRestrictions]

    __slots__ = ("_categories", "_size")

    def __init__(self, lines: Iterable[list[str]]) -> None:
        indexes = {category: _CategoryIndex() for category in RESTRICTION_CATEGORIES}
        grouped: dict[str, dict[tuple[int, int], dict[int, _Entry]]] = {c: {} for c in RESTRICTION_CATEGORIES}
        size = 0
        for position, line in enumerate(lines):
            category, scope, value = line[0], line[1], line[2]
            index = indexes.get(category)
            if index is None or scope not in RESTRICTION_SCOPES:
                continue
            match = _match_from_line(line)
            size += 1
            if scope == "all":
                if index.all is None:
                    index.all = match
            elif scope == "ip":
                address = _address(value)
                if address is not None:
                    index.ips.setdefault((address.version, int(address)), match)
            elif scope == "ip_subnet":
                network = _network(value)
                if network is not None:
                    table = grouped[category].setdefault((network.version, network.prefixlen), {})
                    table.setdefault(int(network.network_address), (position, match))
            else:
                key = value.strip().lower()
                if key:
                    places = index.continents if scope == "continent" else index.countries
                    places.setdefault(key, (position, match))
        for category, tables in grouped.items():
            for version in (4, 6):
                width = 32 if version == 4 else 128
                found = tuple(
                    (((1 << width) - 1) ^ ((1 << (width - prefix)) - 1), table)
                    for (v, prefix), table in sorted(tables.items(), reverse=True)
                    if v == version
                )
                if found:
                    indexes[category].subnets[version] = found
        # Only the categories that hold something are walked per request, in precedence order.
        self._categories = tuple(
            (category, indexes[category]) for category in RESTRICTION_CATEGORIES if not indexes[category].empty
        )
        self._size = size

    @classmethod
    def from_enforcer(cls, enforcer: casbin.Enforcer) -> CompiledRestrictions:
        """Compile the policy lines of a :func:`build_restriction_enforcer` enforcer."""
        return cls(enforcer.get_policy())

    @property
    def is_empty(self) -> bool:
        return not self._categories

    def __len__(self) -> int:
        return self._size

    def match(self, ip: str, location: GeoLocation) -> RestrictionMatch | None:
        """The restriction that applies to ``ip`` at ``location`` (the same answer as :func:`reference_match`)."""
        parsed: tuple[int, int] | None = None
        unparsed = True
        for _category, index in self._categories:
            if index.all is not None:
                return index.all
            if index.ips or index.subnets:
                if unparsed:
                    address = _address(ip)
                    parsed = (address.version, int(address)) if address is not None else None
                    unparsed = False
                if parsed is not None:
                    hit = index.ips.get(parsed)
                    if hit is not None:
                        return hit
                    tables = index.subnets.get(parsed[0])
                    if tables is not None:
                        value = parsed[1]
                        # One probe per prefix length in use; the earliest line among the hits wins.
                        best: _Entry | None = None
                        for mask, table in tables:
                            entry = table.get(value & mask)
                            if entry is not None and best is None:
                                best = entry
                        if best is not None:
                            return best[1]
            hit = _place(index.continents, location.continent_code, location.continent_name)
            if hit is not None:
                return hit
            hit = _place(index.countries, location.country_code, location.country_name)
            if hit is not None:
                return hit
        return None


CompiledRestrictions.EMPTY = CompiledRestrictions(())

__all__ = [
    "MODEL_FILE",
    "CompiledRestrictions",
    "RestrictionMatch",
    "build_restriction_enforcer",
    "reference_match",
    "restriction_matches",
]
