"""Client address resolution: only trusted proxies may speak for the client (loopback by default)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from multidict import CIMultiDict

from authz.app import build_app
from authz.client_ip import UNKNOWN_PEER, client_ip
from authz.http.state import STATE
from authz.settings import Settings, load_settings
from identity.restrictions import validate_restriction
from tests.authz.helpers import DECIDE, UA, fast_settings
from tests.authz.test_pipeline import restrict

#: A deployment whose proxies sit in private ranges and say so (``AUTHZ_TRUSTED_PROXIES``): the rules below.
TRUSTED = load_settings(
    env={"AUTHZ_TRUSTED_PROXIES": "127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"}
).trusted_proxies
XFF = "X-Forwarded-For"
PROXY = "10.0.0.5"  # a trusted peer
STRANGER = "203.0.113.7"  # an untrusted peer
#: One address in each private range that Rails' list (and this service's old default) trusted.
PRIVATE_PEERS = ["10.0.0.5", "172.16.3.4", "192.168.1.20", "fd00::2", "::ffff:10.1.2.3"]


def forwarded(*values: str) -> CIMultiDict[str]:
    """One X-Forwarded-For header per value."""
    return CIMultiDict((XFF, value) for value in values)


# (case, socket peer, X-Forwarded-For headers, expected client address)
FORWARDED_CASES = [
    ("untrusted peer, no headers", STRANGER, (), STRANGER),
    ("untrusted peer, forged XFF ignored", STRANGER, ("1.2.3.4",), STRANGER),
    ("trusted peer, no XFF", PROXY, (), PROXY),
    ("trusted peer, one XFF entry", PROXY, ("1.2.3.4",), "1.2.3.4"),
    ("right-most untrusted entry wins", PROXY, ("6.6.6.6, 1.2.3.4, 192.168.1.1",), "1.2.3.4"),
    ("all entries trusted: left-most", "127.0.0.1", ("10.1.1.1, 172.16.0.1, 192.168.1.1",), "10.1.1.1"),
    ("several XFF headers read as one list", PROXY, ("6.6.6.6", "1.2.3.4, 10.0.0.9"), "1.2.3.4"),
    ("garbage entries skipped", PROXY, ("1.2.3.4, nonsense, , unknown",), "1.2.3.4"),
    ("only garbage: the peer", PROXY, ("nonsense, 999.1.1.1",), PROXY),
    ("empty XFF: the peer", PROXY, ("",), PROXY),
    ("entries are stripped", PROXY, ("  1.2.3.4  ,  10.0.0.1 ",), "1.2.3.4"),
    ("IPv4 with port", PROXY, ("1.2.3.4:8080",), "1.2.3.4"),
    ("bracketed IPv6 with port", PROXY, ("[2001:db8::1]:443",), "2001:db8::1"),
    ("bracketed IPv6 without port", PROXY, ("[2001:db8::1]",), "2001:db8::1"),
    ("bad port is garbage", PROXY, ("6.6.6.6, 1.2.3.4:http",), "6.6.6.6"),
    ("IPv6 entry canonicalised", PROXY, ("2001:DB8:0:0::1",), "2001:db8::1"),
    ("trusted IPv6 entry skipped", "::1", ("2001:db8::1, fd00::1",), "2001:db8::1"),
    ("IPv4-mapped entry becomes IPv4", PROXY, ("::ffff:1.2.3.4",), "1.2.3.4"),
    ("IPv4-mapped trusted entry is trusted", PROXY, ("1.2.3.4, ::ffff:10.9.9.9",), "1.2.3.4"),
    ("IPv4-mapped trusted peer", "::ffff:10.0.0.5", ("1.2.3.4",), "1.2.3.4"),
    ("IPv4-mapped untrusted peer", "::ffff:203.0.113.7", ("1.2.3.4",), STRANGER),
    ("untrusted IPv6 peer", "2001:db8::7", ("1.2.3.4",), "2001:db8::7"),
    ("no peer", None, ("1.2.3.4",), UNKNOWN_PEER),
    ("unparseable peer", "", ("1.2.3.4",), UNKNOWN_PEER),
]


@pytest.mark.parametrize(
    ("peer", "xff", "expected"), [c[1:] for c in FORWARDED_CASES], ids=[c[0] for c in FORWARDED_CASES]
)
def test_forwarded_for(peer: str | None, xff: tuple[str, ...], expected: str) -> None:
    assert client_ip(peer, forwarded(*xff), TRUSTED, "cloudflare") == expected


# (case, socket peer, True-Client-IP, expected client address); X-Forwarded-For is always 1.2.3.4
TRUE_CLIENT_CASES = [
    ("True-Client-IP wins over XFF", PROXY, "5.6.7.8", "5.6.7.8"),
    ("True-Client-IP is canonicalised", PROXY, " ::FFFF:5.6.7.8 ", "5.6.7.8"),
    ("from an untrusted peer it is ignored", STRANGER, "5.6.7.8", STRANGER),
    ("empty: XFF decides", PROXY, "", "1.2.3.4"),
    ("invalid: XFF decides", PROXY, "bogus", "1.2.3.4"),
]


@pytest.mark.parametrize(
    ("peer", "true_client", "expected"),
    [c[1:] for c in TRUE_CLIENT_CASES],
    ids=[c[0] for c in TRUE_CLIENT_CASES],
)
def test_akamai_true_client_ip(peer: str, true_client: str, expected: str) -> None:
    headers = forwarded("1.2.3.4")
    headers["True-Client-IP"] = true_client
    assert client_ip(peer, headers, TRUSTED, "akamai") == expected


def test_cloudflare_ignores_true_client_ip() -> None:
    headers = CIMultiDict([("True-Client-IP", "5.6.7.8"), (XFF, "1.2.3.4")])
    assert client_ip(PROXY, headers, TRUSTED, "cloudflare") == "1.2.3.4"


def test_header_names_are_case_insensitive() -> None:
    headers = CIMultiDict([("x-forwarded-for", "6.6.6.6"), ("X-FORWARDED-FOR", "1.2.3.4")])
    assert client_ip(PROXY, headers, TRUSTED, "cloudflare") == "1.2.3.4"


def test_trusted_networks_may_be_any_sequence() -> None:
    trusted = [ipaddress.ip_network("198.51.100.0/24")]
    assert client_ip("198.51.100.1", forwarded("1.2.3.4"), trusted, "cloudflare") == "1.2.3.4"
    assert client_ip(PROXY, forwarded("1.2.3.4"), trusted, "cloudflare") == PROXY


def test_no_trusted_networks_means_the_peer() -> None:
    assert client_ip("127.0.0.1", forwarded("1.2.3.4"), (), "cloudflare") == "127.0.0.1"


def test_plain_dict_headers_are_read() -> None:
    assert client_ip(PROXY, {XFF: "6.6.6.6, 1.2.3.4"}, TRUSTED, "cloudflare") == "1.2.3.4"


# --- the default: only a proxy on the same host is trusted ----------------------------------------------


def test_by_default_only_loopback_is_a_trusted_proxy() -> None:
    assert Settings().trusted_proxies == load_settings(env={}).trusted_proxies
    assert load_settings(env={}).trusted_proxies == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


@pytest.mark.parametrize("peer", PRIVATE_PEERS)
def test_by_default_a_private_range_peer_cannot_choose_its_address(peer: str) -> None:
    """A client in an office network, a VPC or a compose network is a client, not a proxy."""
    expected = str(ipaddress.ip_address(peer.removeprefix("::ffff:")))
    for headers in (forwarded("8.8.8.8"), forwarded("8.8.8.8, 10.0.0.1")):
        assert client_ip(peer, headers, Settings().trusted_proxies, "cloudflare") == expected
    true_client = CIMultiDict([("True-Client-IP", "8.8.8.8")])
    assert client_ip(peer, true_client, Settings().trusted_proxies, "akamai") == expected


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_by_default_a_proxy_on_loopback_speaks_for_the_client(peer: str) -> None:
    assert client_ip(peer, forwarded("8.8.8.8"), Settings().trusted_proxies, "cloudflare") == "8.8.8.8"


# --- through the app, on its default settings -----------------------------------------------------------

#: The private ranges the old default trusted besides loopback.
PRIVATE_RANGES = [
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
]


def own_private_address() -> str | None:
    """One of this machine's own addresses (not loopback) in a private range, or ``None``: the address the
    kernel would send from towards each range (a UDP ``connect`` sends nothing)."""
    for network in PRIVATE_RANGES:
        family = socket.AF_INET6 if network.version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((str(network.network_address + 1), 9))
                address = ipaddress.ip_address(probe.getsockname()[0])
        except OSError:
            continue
        if any(address in private for private in PRIVATE_RANGES):
            return str(address)
    return None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_apps_resolver_believes_no_private_range_peer_by_default(client: Any) -> None:
    resolve = client.app[STATE].client_ip
    for peer in PRIVATE_PEERS:
        assert resolve(peer, forwarded("8.8.8.8")) == str(ipaddress.ip_address(peer.removeprefix("::ffff:")))
    assert resolve("127.0.0.1", forwarded("8.8.8.8")) == "8.8.8.8"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the socket's peer matters, not SQL
async def test_a_client_connecting_from_a_private_address_cannot_forge_x_forwarded_for(
    aiohttp_server: Any, aiohttp_client: Any, settings: Settings, services: Any, clock: Any
) -> None:
    """The whole app on its default settings, listening on (and so reached from) a private address of this
    machine: its ``X-Forwarded-For: 8.8.8.8`` does not get it past a blacklist of its real address."""
    address = own_private_address()
    if address is None:
        pytest.skip("this machine has no address in 10/8, 172.16/12, 192.168/16 or fc00::/7")
    app = build_app(fast_settings(settings), settings.redis_url, clock=clock)
    server = await aiohttp_server(app, host=address)
    api = await aiohttp_client(server)
    await restrict(api, services, validate_restriction("blacklist", "ip", address))
    for forged in ("8.8.8.8", "8.8.8.8, 10.0.0.1"):
        response = await api.get(
            DECIDE + "api/v2/barong/public/ping", headers={"X-Forwarded-For": forged, "User-Agent": UA}
        )
        assert (response.status, await response.read()) == (401, b'{"errors":["authz.restrict.blacklist"]}')
