"""Envoy's gRPC ext_authz (``envoy.service.auth.v3.Authorization/Check``) over the real app, with a real gRPC
client built from the same protos: the same decisions as the HTTP reader, in Envoy's messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import grpc
import orjson
import pytest
from envoy.config.core.v3.address_pb2 import Address, SocketAddress
from envoy.service.auth.v3.attribute_context_pb2 import AttributeContext
from envoy.service.auth.v3.external_auth_pb2 import CheckRequest, CheckResponse
from envoy.service.auth.v3.external_auth_pb2_grpc import AuthorizationStub
from google.rpc import code_pb2

from authz.app import SERVICES, build_app
from authz.client_ip import client_ip
from authz.http.grpc_ext_authz import decision_request, peer_address
from authz.settings import Settings, load_settings
from identity.restrictions import validate_restriction
from tests.authz.helpers import (
    DECIDE,
    PRIVATE_PATH,
    UK_IP,
    RedisProcess,
    api_key_headers,
    bearer_claims,
    cookie_headers,
    error,
    eventually,
    free_port,
    new_user,
    now_ms,
    open_session,
    signing_key_pem,
)
from tests.authz.test_pipeline import restrict
from tests.faults import TcpProxy


@dataclass
class Sidecar:
    """The app under test: its HTTP test client and a gRPC stub connected to its Check service."""

    http: Any
    stub: AuthorizationStub

    async def check(
        self, method: str, path: str, headers: Mapping[str, str] | None = None, *, source: str = UK_IP
    ) -> CheckResponse:
        """Ask as Envoy does: the original method and ``:path`` (with its query), lower-case header names."""
        http = AttributeContext.HttpRequest(
            method=method, path=path, headers={k.lower(): v for k, v in (headers or {}).items()}
        )
        attributes = AttributeContext(
            source=AttributeContext.Peer(
                address=Address(socket_address=SocketAddress(address=source, port_value=51000))
            ),
            request=AttributeContext.Request(http=http),
        )
        return await self.stub.Check(CheckRequest(attributes=attributes), timeout=10)


@asynccontextmanager
async def start_sidecar(
    aiohttp_client: Any, settings: Settings, clock: Any, **changes: Any
) -> AsyncIterator[Sidecar]:
    port = free_port()
    changed = replace(
        settings, host="127.0.0.1", grpc_port=port, jwt_private_key=signing_key_pem(), **changes
    )
    http = await aiohttp_client(build_app(changed, changed.redis_url, clock=clock))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Sidecar(http, AuthorizationStub(channel))


@pytest.fixture
async def sidecar(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any
) -> AsyncIterator[Sidecar]:
    async with start_sidecar(aiohttp_client, settings, clock) as running:
        yield running


def denial(response: CheckResponse) -> tuple[int, Any]:
    """(HTTP status, JSON body) of a denied check; fails on an allowed one."""
    assert response.status.code != code_pb2.OK, response
    assert response.WhichOneof("http_response") == "denied_response"
    denied = response.denied_response
    assert [(h.header.key, h.header.value) for h in denied.headers] == [("content-type", "application/json")]
    return denied.status.code, orjson.loads(denied.body)


def upstream_headers(response: CheckResponse) -> dict[str, str]:
    assert response.status.code == code_pb2.OK, response
    assert response.WhichOneof("http_response") == "ok_response"
    return {h.header.key: h.header.value for h in response.ok_response.headers}


async def test_allowed_cookie_request_gets_the_authorization_jwt(
    sidecar: Sidecar, services: Any, clock: Any
) -> None:
    user = await new_user(services)
    cookie, _ = await open_session(services, user, clock)
    response = await sidecar.check("GET", "/" + PRIVATE_PATH + "?currency=btc", cookie_headers(cookie))
    headers = upstream_headers(response)
    assert list(headers) == ["authorization"]
    assert not response.ok_response.headers[0].HasField("append")  # unset: Envoy overwrites a client's header
    claims = await bearer_claims(sidecar.http, headers["authorization"])
    assert (claims["uid"], claims["sub"]) == (user.uid, "session")


async def test_allowed_api_key_request_gets_the_authorization_jwt(
    sidecar: Sidecar, services: Any, clock: Any
) -> None:
    user = await new_user(services, otp=True)
    key = await services.api_keys.create(holder_id=user.id)
    response = await sidecar.check("GET", "/" + PRIVATE_PATH, api_key_headers(key, now_ms(clock)))
    claims = await bearer_claims(sidecar.http, upstream_headers(response)["authorization"])
    assert claims["uid"] == user.uid


async def test_no_credentials_is_denied_401_with_the_error_body(sidecar: Sidecar) -> None:
    response = await sidecar.check("GET", "/" + PRIVATE_PATH, {"User-Agent": "curl"})
    assert denial(response) == (401, error("authz.invalid_session"))
    assert response.status.code == code_pb2.UNAUTHENTICATED


async def test_pass_route_removes_a_client_supplied_authorization(sidecar: Sidecar) -> None:
    response = await sidecar.check("GET", "/api/v2/barong/public/ping", {"Authorization": "Bearer forged"})
    assert upstream_headers(response) == {}
    assert list(response.ok_response.headers_to_remove) == ["authorization"]


async def test_restriction_answers_its_own_status_code(sidecar: Sidecar, services: Any) -> None:
    await restrict(sidecar.http, services, validate_restriction("maintenance", "all", "all"))
    response = await sidecar.check("GET", "/api/v2/barong/public/ping")
    assert denial(response) == (471, error("authz.restrict.maintenance"))


async def test_source_address_envoy_reports_is_the_client_ip(sidecar: Sidecar, services: Any) -> None:
    await restrict(sidecar.http, services, validate_restriction("blacklist", "ip", UK_IP))
    # No X-Forwarded-For: the address comes from attributes.source, vouched for by a trusted peer (loopback).
    status, body = denial(await sidecar.check("GET", "/api/v2/barong/public/ping", source=UK_IP))
    assert body == error("authz.restrict.blacklist")
    assert status == 401
    assert upstream_headers(await sidecar.check("GET", "/api/v2/barong/public/ping", source="8.8.8.8")) == {}


async def raw_request(
    client: Any, method: str, target: str, headers: Mapping[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` byte for byte (HTTP clients normalise dot segments away before sending)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    lines = [f"{method} {target} HTTP/1.1", "Host: x", "Connection: close", "Content-Length: 0"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    answer_headers = {
        name.lower(): value for name, _, value in (line.partition(": ") for line in header_lines)
    }
    return int(status_line.split()[1]), answer_headers, body


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the reader is what differs, not SQL
@pytest.mark.parametrize(
    ("method", "target", "with_session"),
    [
        ("GET", "/" + PRIVATE_PATH, True),
        ("GET", "/" + PRIVATE_PATH, False),
        ("POST", "/api/v2/peatio/market/orders", True),  # no CSRF token
        ("GET", "/api/v2/barong/management/users", False),  # block rule
        ("GET", "/api/v2/barong/admin/users?page=2", True),  # RBAC
        ("GET", "/api/v2/barong/public/%2e%2e/admin/users", False),
        ("GET", "/api/v2/barong/public/..%5cadmin", False),
        ("GET", "/api/v2/barong/public/a%00b", False),
        ("GET", "/api/v2/barong/public/ping?x=%2F", False),
    ],
)
async def test_grpc_and_http_readers_decide_alike(
    sidecar: Sidecar, services: Any, clock: Any, method: str, target: str, with_session: bool
) -> None:
    headers = {"User-Agent": "curl", "X-Forwarded-For": UK_IP}
    if with_session:
        headers = cookie_headers((await open_session(services, await new_user(services), clock))[0])
    status, answer_headers, body = await raw_request(
        sidecar.http, method, DECIDE.rstrip("/") + target, headers
    )
    over_grpc = await sidecar.check(method, target, headers)
    if status == 200:
        assert set(upstream_headers(over_grpc)) == {k for k in answer_headers if k == "authorization"}
    else:
        assert denial(over_grpc) == (status, orjson.loads(body))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_verb_but_get_head_and_options_needs_the_csrf_token(
    sidecar: Sidecar, services: Any, clock: Any
) -> None:
    cookie, csrf = await open_session(services, await new_user(services), clock)
    for method in ("PROPPATCH", "MKCOL", "LOCK", "CONNECT", "BREW"):
        refused = await sidecar.check(method, "/" + PRIVATE_PATH, cookie_headers(cookie))
        assert denial(refused) == (401, error("authz.missing_csrf_token")), method
    for method in ("PROPPATCH", "MKCOL", "LOCK", "CONNECT", "BREW"):
        allowed = await sidecar.check(method, "/" + PRIVATE_PATH, cookie_headers(cookie, csrf=csrf))
        assert "authorization" in upstream_headers(allowed), method
    for method in ("GET", "HEAD", "OPTIONS"):
        allowed = await sidecar.check(method, "/" + PRIVATE_PATH, cookie_headers(cookie))
        assert "authorization" in upstream_headers(allowed), method


async def test_a_method_that_is_not_an_upper_case_token_is_refused(
    sidecar: Sidecar, services: Any, clock: Any
) -> None:
    """Envoy passes on whatever method the client sent (HTTP/2's ``:method`` may be lower-case).  Before, a
    ``post`` matched the superadmin's ALL row but none of the POST AUDIT rows: allowed, and never audited
    (a ``get`` would likewise dodge a GET-only DROP row)."""
    superadmin = await new_user(services, role="superadmin")
    cookie, csrf = await open_session(services, superadmin, clock)
    path = "/api/v2/barong/admin/users/role"
    assert "authorization" in upstream_headers(await sidecar.check("POST", path, cookie_headers(cookie, csrf=csrf)))
    for method in ("post", "Post", "get", "Options", "X-CUSTOM", "", "G\u0000T"):
        refused = await sidecar.check(method, path, cookie_headers(cookie, csrf=csrf))
        assert denial(refused) == (400, error("authz.invalid_original_method")), method


async def test_a_path_that_is_not_origin_form_is_refused(sidecar: Sidecar) -> None:
    assert denial(await sidecar.check("OPTIONS", "*")) == (400, error("authz.invalid_path"))


@pytest.fixture
async def private_redis() -> AsyncIterator[RedisProcess]:
    server = RedisProcess(free_port())
    await server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_unavailable_redis_is_denied_503_never_ok(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any, private_redis: RedisProcess
) -> None:
    changes = {"redis_url": private_redis.url, "redis_timeout": 0.3}
    async with start_sidecar(aiohttp_client, settings, clock, **changes) as sidecar:
        user = await new_user(services)
        cookie, _ = await open_session(sidecar.http.app[SERVICES], user, clock)

        async def by_cookie() -> CheckResponse:
            return await sidecar.check("GET", "/" + PRIVATE_PATH, cookie_headers(cookie))

        assert upstream_headers(await by_cookie())  # allowed, and now cached in the app
        private_redis.kill()
        unavailable = (503, error("authz.unavailable"))
        first = await eventually(by_cookie, lambda got: got.status.code != code_pb2.OK, within=0.3 + 0.5)
        assert denial(first) == unavailable
        for response in await asyncio.gather(*(by_cookie() for _ in range(5))):
            assert denial(response) == unavailable
            assert response.status.code == code_pb2.UNAVAILABLE


@pytest.fixture
async def pg_proxy(postgres_ready: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    target = urlsplit(postgres_ready)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    yield proxy, postgres_ready.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    await proxy.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_unavailable_database_is_denied_503_never_ok(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any, pg_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, proxied_url = pg_proxy
    changes = {"database_url": proxied_url, "database_timeout": 1.0}
    async with start_sidecar(aiohttp_client, settings, clock, **changes) as sidecar:
        # A user the app has never loaded: deciding on it needs SQL.
        cookie, _ = await open_session(services, await new_user(services), clock)
        await proxy.stop()
        response = await sidecar.check("GET", "/" + PRIVATE_PATH, cookie_headers(cookie))
        assert denial(response) == (503, error("authz.unavailable"))
        assert response.status.code == code_pb2.UNAVAILABLE


# --- the reader's pieces ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:10.1.2.3:41234", "10.1.2.3:41234"),
        ("ipv6:%5B::1%5D:41234", "[::1]:41234"),
        ("ipv6:[fd00::7]:80", "[fd00::7]:80"),
        ("unix:/run/authz.sock", None),
        ("", None),
    ],
)
def test_peer_names_become_addresses(peer: str, address: str | None) -> None:
    assert peer_address(peer) == address


def resolver(settings: Settings) -> SimpleNamespace:
    trusted = settings.trusted_proxies
    return SimpleNamespace(client_ip=lambda peer, headers: client_ip(peer, headers, trusted, "cloudflare"))


#: Envoy and a balancer in front of it on 10/8, named in AUTHZ_TRUSTED_PROXIES.
RESOLVER = resolver(load_settings(env={"AUTHZ_TRUSTED_PROXIES": "127.0.0.0/8,::1,10.0.0.0/8"}))
DEFAULT_RESOLVER = resolver(load_settings(env={}))


def resolved(resolver: SimpleNamespace, peer: str | None, source: str, forwarded: str) -> str:
    http = AttributeContext.HttpRequest(
        method="GET", path="/x", headers={"x-forwarded-for": forwarded} if forwarded else {}
    )
    request = decision_request(http, source, peer, resolver)  # type: ignore[arg-type]
    assert request is not None
    return request.client_ip


@pytest.mark.parametrize(
    ("peer", "source", "forwarded", "expected"),
    [
        ("127.0.0.1:5000", UK_IP, "", UK_IP),  # Envoy on loopback reports the downstream address
        ("127.0.0.1:5000", UK_IP, "8.8.8.8", UK_IP),  # the downstream's own XFF does not outrank it
        ("10.0.0.2:5000", "10.0.0.9", UK_IP, UK_IP),  # downstream is a trusted balancer: its XFF counts
        ("10.0.0.2:5000", "8.8.8.8", UK_IP, "8.8.8.8"),  # an untrusted downstream cannot forward
        ("203.0.113.9:5000", UK_IP, "1.2.3.4", "203.0.113.9"),  # not a trusted proxy: nothing it says counts
        (None, UK_IP, "", "0.0.0.0"),  # unknown peer (unix socket): never trusted
    ],
)
def test_client_ip_follows_the_trusted_proxy_rules(
    peer: str | None, source: str, forwarded: str, expected: str
) -> None:
    assert resolved(RESOLVER, peer, source, forwarded) == expected


@pytest.mark.parametrize(
    ("peer", "source", "forwarded", "expected"),
    [
        ("127.0.0.1:5000", UK_IP, "8.8.8.8", UK_IP),  # Envoy on the same host
        ("[::1]:5000", UK_IP, "", UK_IP),
        ("10.0.0.2:5000", "8.8.8.8", "", "10.0.0.2"),  # a private-range peer is no proxy by default...
        ("10.0.0.2:5000", UK_IP, "8.8.8.8", "10.0.0.2"),  # ...whatever source and XFF it claims
        ("[fd00::2]:5000", "8.8.8.8", "", "fd00::2"),
        ("192.168.1.2:5000", "8.8.8.8", "", "192.168.1.2"),
    ],
)
def test_by_default_only_a_grpc_peer_on_loopback_may_speak_for_the_client(
    peer: str, source: str, forwarded: str, expected: str
) -> None:
    assert resolved(DEFAULT_RESOLVER, peer, source, forwarded) == expected


def test_raw_header_map_is_read_when_envoy_sends_it() -> None:
    http = AttributeContext.HttpRequest(method="POST", path="/api/v2/x?a=%20b")
    http.header_map.headers.add(key="cookie", raw_value=b"_barong_session=abc")
    http.header_map.headers.add(key="x-csrf-token", raw_value=b"t")
    request = decision_request(http, UK_IP, "127.0.0.1:1", RESOLVER)  # type: ignore[arg-type]
    assert request is not None
    assert (request.method, request.path, request.query_string) == ("POST", "api/v2/x", "a= b")
    assert request.cookies.get("_barong_session") == "abc"
    assert request.headers["X-CSRF-Token"] == "t"
