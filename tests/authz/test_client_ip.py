"""Client address resolution: only trusted proxies may speak for the client."""

from __future__ import annotations

import ipaddress

import pytest
from multidict import CIMultiDict

from authz.client_ip import UNKNOWN_PEER, client_ip
from authz.settings import DEFAULT_TRUSTED_PROXIES

TRUSTED = tuple(ipaddress.ip_network(n) for n in DEFAULT_TRUSTED_PROXIES)


def headers(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


XFF = "X-Forwarded-For"

# (case, peer, headers, gateway, expected)
CASES = [
    ("untrusted peer, no headers", "203.0.113.7", headers(), "cloudflare", "203.0.113.7"),
    ("untrusted peer, forged XFF ignored", "203.0.113.7", headers((XFF, "1.2.3.4")), "cloudflare", "203.0.113.7"),
    ("trusted peer, no XFF", "10.0.0.5", headers(), "cloudflare", "10.0.0.5"),
    ("trusted peer, one XFF entry", "10.0.0.5", headers((XFF, "1.2.3.4")), "cloudflare", "1.2.3.4"),
    (
        "right-most untrusted entry wins",
        "10.0.0.5",
        headers((XFF, "6.6.6.6, 1.2.3.4, 192.168.1.1")),
        "cloudflare",
        "1.2.3.4",
    ),
    (
        "all entries trusted: left-most",
        "127.0.0.1",
        headers((XFF, "10.1.1.1, 172.16.0.1, 192.168.1.1")),
        "cloudflare",
        "10.1.1.1",
    ),
    ("header name is case-insensitive", "10.0.0.5", headers(("x-forwarded-for", "1.2.3.4")), "cloudflare", "1.2.3.4"),
    (
        "several XFF headers read as one list",
        "10.0.0.5",
        headers((XFF, "6.6.6.6"), (XFF, "1.2.3.4, 10.0.0.9")),
        "cloudflare",
        "1.2.3.4",
    ),
    ("garbage entries skipped", "10.0.0.5", headers((XFF, "1.2.3.4, nonsense, , unknown")), "cloudflare", "1.2.3.4"),
    ("only garbage: the peer", "10.0.0.5", headers((XFF, "nonsense, 999.1.1.1")), "cloudflare", "10.0.0.5"),
    ("empty XFF: the peer", "10.0.0.5", headers((XFF, "")), "cloudflare", "10.0.0.5"),
    ("IPv4 with port", "10.0.0.5", headers((XFF, "1.2.3.4:8080")), "cloudflare", "1.2.3.4"),
    ("bracketed IPv6 with port", "10.0.0.5", headers((XFF, "[2001:db8::1]:443")), "cloudflare", "2001:db8::1"),
    ("bracketed IPv6 without port", "10.0.0.5", headers((XFF, "[2001:db8::1]")), "cloudflare", "2001:db8::1"),
    ("bad port is garbage", "10.0.0.5", headers((XFF, "6.6.6.6, 1.2.3.4:http")), "cloudflare", "6.6.6.6"),
    ("IPv6 entry canonicalised", "10.0.0.5", headers((XFF, "2001:DB8:0:0::1")), "cloudflare", "2001:db8::1"),
    ("trusted IPv6 entry skipped", "::1", headers((XFF, "2001:db8::1, fd00::1")), "cloudflare", "2001:db8::1"),
    ("IPv4-mapped entry becomes IPv4", "10.0.0.5", headers((XFF, "::ffff:1.2.3.4")), "cloudflare", "1.2.3.4"),
    (
        "IPv4-mapped trusted entry is trusted",
        "10.0.0.5",
        headers((XFF, "1.2.3.4, ::ffff:10.9.9.9")),
        "cloudflare",
        "1.2.3.4",
    ),
    ("IPv4-mapped trusted peer", "::ffff:10.0.0.5", headers((XFF, "1.2.3.4")), "cloudflare", "1.2.3.4"),
    ("IPv4-mapped untrusted peer", "::ffff:203.0.113.7", headers((XFF, "1.2.3.4")), "cloudflare", "203.0.113.7"),
    ("untrusted IPv6 peer", "2001:db8::7", headers((XFF, "1.2.3.4")), "cloudflare", "2001:db8::7"),
    ("entries are stripped", "10.0.0.5", headers((XFF, "  1.2.3.4  ,  10.0.0.1 ")), "cloudflare", "1.2.3.4"),
    (
        "akamai: True-Client-IP wins over XFF",
        "10.0.0.5",
        headers(("True-Client-IP", "5.6.7.8"), (XFF, "1.2.3.4")),
        "akamai",
        "5.6.7.8",
    ),
    (
        "akamai: True-Client-IP from an untrusted peer ignored",
        "203.0.113.7",
        headers(("True-Client-IP", "5.6.7.8")),
        "akamai",
        "203.0.113.7",
    ),
    (
        "akamai: empty True-Client-IP falls back to XFF",
        "10.0.0.5",
        headers(("True-Client-IP", ""), (XFF, "1.2.3.4")),
        "akamai",
        "1.2.3.4",
    ),
    (
        "akamai: invalid True-Client-IP falls back to XFF",
        "10.0.0.5",
        headers(("True-Client-IP", "bogus"), (XFF, "1.2.3.4")),
        "akamai",
        "1.2.3.4",
    ),
    (
        "cloudflare ignores True-Client-IP",
        "10.0.0.5",
        headers(("True-Client-IP", "5.6.7.8"), (XFF, "1.2.3.4")),
        "cloudflare",
        "1.2.3.4",
    ),
    ("no peer", None, headers((XFF, "1.2.3.4")), "cloudflare", UNKNOWN_PEER),
    ("unparseable peer", "", headers((XFF, "1.2.3.4")), "cloudflare", UNKNOWN_PEER),
]


@pytest.mark.parametrize(("peer", "hdrs", "gateway", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_client_ip(peer: str | None, hdrs: CIMultiDict[str], gateway: str, expected: str) -> None:
    assert client_ip(peer, hdrs, TRUSTED, gateway) == expected


def test_trusted_networks_may_be_any_sequence() -> None:
    trusted = [ipaddress.ip_network("198.51.100.0/24")]
    assert client_ip("198.51.100.1", headers((XFF, "1.2.3.4")), trusted, "cloudflare") == "1.2.3.4"
    assert client_ip("10.0.0.5", headers((XFF, "1.2.3.4")), trusted, "cloudflare") == "10.0.0.5"


def test_no_trusted_networks_means_the_peer() -> None:
    assert client_ip("127.0.0.1", headers((XFF, "1.2.3.4")), (), "cloudflare") == "127.0.0.1"


def test_plain_dict_headers_are_read() -> None:
    assert client_ip("10.0.0.5", {XFF: "6.6.6.6, 1.2.3.4"}, TRUSTED, "cloudflare") == "1.2.3.4"
