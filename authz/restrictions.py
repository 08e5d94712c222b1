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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, TypeVar

import casbin  # type: ignore[import-untyped]  # pycasbin ships no type hints

from authz.geoip import GeoLocation
from authz.settings import Network, Settings
from identity.models import RESTRICTION_CATEGORIES, RESTRICTION_SCOPES, Restriction

MODEL_FILE = "restrictions_model.conf"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class RestrictionMatch:
    """The restriction that applies to a client: its category, scope, HTTP status and row id."""

    category: str
    scope: str
    code: int
    restriction_id: int | None = None


# --- value parsing, shared by the Casbin matcher function and the compiled indexes ---------------------


def _address(text: str) -> Address | None:
    """``text`` as an address, IPv4-mapped IPv6 as IPv4 and without an IPv6 zone; ``None`` if invalid."""
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


def _match_from_line(line: Sequence[str]) -> RestrictionMatch:
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

_K = TypeVar("_K")

#: (policy position, match): the position decides between hits of one scope found under different keys.
_Entry = tuple[int, RestrictionMatch]
#: One slot per category, in precedence order: a client's hits in every category come from one lookup.
_Slots = tuple[_Entry | None, ...]

_RANK = {category: rank for rank, category in enumerate(RESTRICTION_CATEGORIES)}
_WIDTH = len(RESTRICTION_CATEGORIES)


@lru_cache(maxsize=65536)
def _key(ip: str) -> tuple[int, int] | None:
    """(version, address as int) of the client: the key of the ip index and the input of subnet masks.

    Cached because the hot path parses the client of every request and clients repeat.
    """
    address = _address(ip)
    return (address.version, int(address)) if address is not None else None


def _first(slot: list[_Entry | None], rank: int, entry: _Entry) -> None:
    if slot[rank] is None:
        slot[rank] = entry


def _freeze(index: dict[_K, list[_Entry | None]]) -> dict[_K, _Slots]:
    return {key: tuple(slots) for key, slots in index.items()}


def _places(index: dict[str, _Slots], code: str | None, name: str | None) -> tuple[_Slots, ...] | None:
    if not index:
        return None
    by_code = index.get(code.lower()) if code else None
    by_name = index.get(name.lower()) if name else None
    if by_code is None:
        return None if by_name is None else (by_name,)
    return (by_code,) if by_name is None or by_name is by_code else (by_code, by_name)


def _earliest(hits: Sequence[_Slots], rank: int) -> RestrictionMatch | None:
    best: _Entry | None = None
    for slots in hits:
        entry = slots[rank]
        if entry is not None and (best is None or entry[0] < best[0]):
            best = entry
    return best[1] if best is not None else None


class CompiledRestrictions:
    """Restriction policy lines compiled into hash indexes: :meth:`match` costs the same for 10 or 10,000.

    Every index maps a key (address, network, lowercased place) to one slot per category, so a request
    costs one probe per index (per prefix length in use for subnets) whatever the number of rows.  Built
    from a Casbin enforcer's policy (:meth:`from_enforcer`); immutable: a new policy means a new instance.
    """

    EMPTY: ClassVar[CompiledRestrictions]

    __slots__ = ("_all", "_first_all", "_ips", "_subnets", "_continents", "_countries", "_size")

    def __init__(self, lines: Iterable[Sequence[str]]) -> None:
        everyone: list[_Entry | None] = [None] * _WIDTH
        ips: dict[tuple[int, int], list[_Entry | None]] = {}
        networks: dict[tuple[int, int], dict[int, list[_Entry | None]]] = {}  # (version, prefix) → table
        continents: dict[str, list[_Entry | None]] = {}
        countries: dict[str, list[_Entry | None]] = {}
        size = 0
        for position, line in enumerate(lines):
            category, scope, value = line[0], line[1], line[2]
            rank = _RANK.get(category)
            if rank is None or scope not in RESTRICTION_SCOPES:
                continue
            size += 1
            entry = (position, _match_from_line(line))
            if scope == "all":
                _first(everyone, rank, entry)
            elif scope == "ip":
                address = _address(value)  # not _key: restriction values would crowd clients out of its cache
                if address is not None:
                    _first(ips.setdefault((address.version, int(address)), [None] * _WIDTH), rank, entry)
            elif scope == "ip_subnet":
                network = _network(value)
                if network is not None:
                    table = networks.setdefault((network.version, network.prefixlen), {})
                    _first(table.setdefault(int(network.network_address), [None] * _WIDTH), rank, entry)
            elif place := value.strip().lower():
                places = continents if scope == "continent" else countries
                _first(places.setdefault(place, [None] * _WIDTH), rank, entry)

        self._all = tuple(e[1] if e is not None else None for e in everyone)
        #: The answer when nothing but "all" can match: the first category holding an "all" row.
        self._first_all = next((match for match in self._all if match is not None), None)
        self._ips: dict[tuple[int, int], tuple[RestrictionMatch | None, ...]] = {
            key: tuple(e[1] if e is not None else None for e in slots) for key, slots in ips.items()
        }
        self._subnets: dict[int, tuple[tuple[int, dict[int, _Slots]], ...]] = {}
        for version, width in ((4, 32), (6, 128)):
            tables = tuple(
                (((1 << width) - 1) ^ ((1 << (width - prefix)) - 1), _freeze(table))
                for (v, prefix), table in sorted(networks.items(), reverse=True)
                if v == version
            )
            if tables:
                self._subnets[version] = tables
        self._continents = _freeze(continents)
        self._countries = _freeze(countries)
        self._size = size

    @classmethod
    def from_enforcer(cls, enforcer: casbin.Enforcer) -> CompiledRestrictions:
        """Compile the policy lines of a :func:`build_restriction_enforcer` enforcer."""
        return cls(enforcer.get_policy())

    @property
    def is_empty(self) -> bool:
        return self._size == 0

    @property
    def uses_location(self) -> bool:
        """Whether any continent or country row exists: without one, callers may skip the GeoIP lookup."""
        return bool(self._continents or self._countries)

    def __len__(self) -> int:
        return self._size

    def match(self, ip: str, location: GeoLocation) -> RestrictionMatch | None:
        """The restriction for ``ip`` at ``location``: the same answer as :func:`reference_match`."""
        ip_hits: tuple[RestrictionMatch | None, ...] | None = None
        subnet_hits: list[_Slots] | None = None
        if self._ips or self._subnets:
            key = _key(ip)
            if key is not None:
                ip_hits = self._ips.get(key)
                tables = self._subnets.get(key[0])
                if tables is not None:
                    value = key[1]
                    for mask, table in tables:
                        slots = table.get(value & mask)
                        if slots is not None:
                            if subnet_hits is None:
                                subnet_hits = [slots]
                            else:
                                subnet_hits.append(slots)
        continent_hits = _places(self._continents, location.continent_code, location.continent_name)
        country_hits = _places(self._countries, location.country_code, location.country_name)
        if ip_hits is None and subnet_hits is None and continent_hits is None and country_hits is None:
            return self._first_all  # the common case: this client is named by no restriction

        for rank in range(_WIDTH):
            hit = self._all[rank]
            if hit is None and ip_hits is not None:
                hit = ip_hits[rank]
            if hit is None and subnet_hits is not None:
                hit = _earliest(subnet_hits, rank)
            if hit is None and continent_hits is not None:
                hit = _earliest(continent_hits, rank)
            if hit is None and country_hits is not None:
                hit = _earliest(country_hits, rank)
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
