"""The client's address, as Rails' ``remote_ip`` (and so Barong) computes it, minus the forgeable parts.

Only a socket peer inside a trusted proxy network may speak for the client: from anyone else the
``X-Forwarded-For`` and ``True-Client-IP`` headers are ignored, because any client can write them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from functools import lru_cache

from authz.settings import Network

#: Answer when the socket peer is unknown (no address, or a unix socket): never trusted, never matched.
UNKNOWN_PEER = "0.0.0.0"

#: (version, address as int, canonical text); the int lets the trusted check be a mask and compare.
_Parsed = tuple[int, int, str]
#: Trusted networks split by IP version as (netmask, network) int pairs.
_Compiled = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]


@lru_cache(maxsize=65536)
def _parse(text: str) -> _Parsed | None:
    """Parse one header entry or peer; ``None`` for garbage.

    Cached: the same few proxies and clients repeat on every request.  Entries come from headers, so the
    cache may fill with junk from a hostile client; it is bounded and that only costs hit rate.
    """
    if text.startswith("["):  # "[v6]" or "[v6]:port"
        end = text.find("]")
        if end < 0 or (end + 1 < len(text) and not _is_port(text[end + 1 :])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # "a.b.c.d:port"; a bare IPv6 address has at least two colons
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
        text = host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.version, int(address), str(address)


def _is_port(suffix: str) -> bool:
    return suffix.startswith(":") and suffix[1:].isdigit()


def _compile(trusted: Sequence[Network]) -> _Compiled:
    v4 = tuple((int(n.netmask), int(n.network_address)) for n in trusted if n.version == 4)
    v6 = tuple((int(n.netmask), int(n.network_address)) for n in trusted if n.version == 6)
    return v4, v6


#: The last tuple of trusted networks seen, by identity, with its compiled form.  Every request passes
#: the same settings tuple; hashing the networks for an lru_cache would cost more than the whole check.
_last_compiled: tuple[tuple[Network, ...], _Compiled] = ((), ((), ()))


def _compiled(trusted: Sequence[Network]) -> _Compiled:
    global _last_compiled
    last_trusted, compiled = _last_compiled
    if trusted is last_trusted:
        return compiled
    compiled = _compile(trusted)
    if isinstance(trusted, tuple):  # only an immutable sequence may be remembered by identity
        _last_compiled = (trusted, compiled)
    return compiled


def _is_trusted(parsed: _Parsed, compiled: _Compiled) -> bool:
    version, value, _ = parsed
    for mask, network in compiled[0] if version == 4 else compiled[1]:
        if value & mask == network:
            return True
    return False


def _forwarded_entries(headers: Mapping[str, str]) -> list[str]:
    getall = getattr(headers, "getall", None)
    values = getall("X-Forwarded-For", ()) if getall is not None else [headers.get("X-Forwarded-For", "")]
    if len(values) == 1 and "," not in values[0]:  # the common case: one proxy, one entry
        return [values[0]]
    return [entry for value in values for entry in value.split(",")]


def client_ip(peer: str | None, headers: Mapping[str, str], trusted: Sequence[Network], gateway: str) -> str:
    """The client's IP address in canonical form (IPv4-mapped IPv6 becomes IPv4).

    ``peer`` is the socket's remote address, ``headers`` a case-insensitive multidict (all
    ``X-Forwarded-For`` headers are read), ``trusted`` the proxy networks and ``gateway`` the
    ``AUTHZ_GATEWAY`` setting (``akamai`` honours ``True-Client-IP``).
    """
    peer_parsed = _parse(peer.strip()) if peer else None
    if peer_parsed is None:
        return UNKNOWN_PEER
    compiled = _compiled(trusted)
    if not _is_trusted(peer_parsed, compiled):
        return peer_parsed[2]

    if gateway == "akamai":
        true_client = headers.get("True-Client-IP", "").strip()
        parsed = _parse(true_client) if true_client else None
        if parsed is not None:
            return parsed[2]

    leftmost: _Parsed | None = None
    for entry in reversed(_forwarded_entries(headers)):
        entry = entry.strip()
        parsed = _parse(entry) if entry else None
        if parsed is None:
            continue
        if not _is_trusted(parsed, compiled):
            return parsed[2]
        leftmost = parsed
    return (leftmost or peer_parsed)[2]


__all__ = ["UNKNOWN_PEER", "client_ip"]
