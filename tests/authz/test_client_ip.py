"""Client address resolution: only trusted proxies may speak for the client."""

from __future__ import annotations

import ipaddress

import pytest
from multidict import CIMultiDict

from authz.client_ip import UNKNOWN_PEER, client_ip
from authz.settings import DEFAULT_TRUSTED_PROXIES

TRUSTED = tuple(ipaddress.ip_network(n) for n in DEFAULT_TRUSTED_PROXIES)
XFF = "X-Forwarded-For"
PROXY = "10.0.0.5"  # a trusted peer
STRANGER = "203.0.113.7"  # an untrusted peer


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
