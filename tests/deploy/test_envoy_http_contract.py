"""The HTTP ext_authz contract, as Envoy's documentation defines it, run against the in-process sidecar.

:class:`EnvoyHttpExtAuthz` does what Envoy's filter does, configured from envoy/envoy.yaml itself: the check
request carries the original method, the path and query appended to ``path_prefix``, only the allowed headers
(plus Host and Content-Length: 0) and no body; only an exact 200 lets the request through, with the allowed
upstream headers set on it and the headers named in ``x-envoy-auth-headers-to-remove`` removed; any other
answer goes back to the client with its status, body and allowed client headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from envoy.type.matcher.v3.string_pb2 import ListStringMatcher

from identity.restrictions import validate_restriction
from tests.authz.helpers import (
    PRIVATE_PATH,
    UK_IP,
    api_key_headers,
    bearer_claims,
    cookie_headers,
    new_user,
    now_ms,
    open_session,
)
from tests.authz.test_pipeline import restrict
from tests.deploy.envoy_config import HTTP_CONFIG, ext_authz, load_yaml, parse

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the contract, not SQL

#: Headers Envoy puts on every check request whatever the configuration says (its docs: Host, Method, Path,
#: Content-Length and Authorization; method and path travel in the request line here).
ALWAYS_SENT = ("host", "authorization")


def _matches(patterns: ListStringMatcher, name: str) -> bool:
    for pattern in patterns.patterns:
        kind = pattern.WhichOneof("match_pattern")
        value, subject = getattr(pattern, kind), name
        if pattern.ignore_case:
            value, subject = value.lower(), subject.lower()
        if kind == "exact" and subject == value:
            return True
        if kind == "prefix" and subject.startswith(value):
            return True
        if kind == "suffix" and subject.endswith(value):
            return True
        if kind == "contains" and value in subject:
            return True
        assert kind in ("exact", "prefix", "suffix", "contains"), (
            f"matcher {kind} not understood by this test"
        )
    return False


@dataclass
class Outcome:
    """What Envoy does with one request: the upstream request's headers, or the client's answer."""

    upstream_headers: dict[str, str] | None
    status: int
    body: bytes
    client_headers: dict[str, str]


class EnvoyHttpExtAuthz:
    """Envoy's HTTP ext_authz filter, configured from envoy.yaml, with the sidecar behind ``client``."""

    def __init__(self, client: Any) -> None:
        config = ext_authz(parse(load_yaml(HTTP_CONFIG)))
        self.client = client
        self.service = config.http_service
        assert not config.HasField("with_request_body")  # the body is never sent to the sidecar

    def check_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        allowed = self.service.authorization_request.allowed_headers
        sent = {
            k.lower(): v
            for k, v in headers.items()
            if k.lower() in ALWAYS_SENT or _matches(allowed, k.lower())
        }
        sent["content-length"] = "0"
        return sent

    async def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Outcome:
        check = await self.client.request(
            method,
            self.service.path_prefix + target,
            headers=self.check_headers(headers),
            skip_auto_headers=["Content-Type"],
        )
        answer = await check.read()
        response = self.service.authorization_response
        if check.status != 200:
            kept = {
                k.lower(): v
                for k, v in check.headers.items()
                if _matches(response.allowed_client_headers, k.lower())
            }
            return Outcome(None, check.status, answer, kept)
        upstream = {k.lower(): v for k, v in headers.items()}
        for name, value in check.headers.items():
            if _matches(response.allowed_upstream_headers, name.lower()):
                upstream[name.lower()] = value  # set, not appended
        for name in check.headers.get("x-envoy-auth-headers-to-remove", "").split(","):
            upstream.pop(name.strip().lower(), None)
        return Outcome(upstream, 200, b"", {})


@pytest.fixture
def envoy(client: Any) -> EnvoyHttpExtAuthz:
    return EnvoyHttpExtAuthz(client)


async def test_cookie_request_reaches_the_upstream_with_a_verifiable_jwt(
    envoy: EnvoyHttpExtAuthz, services: Any, clock: Any
) -> None:
    user = await new_user(services)
    cookie, _ = await open_session(services, user, clock)
    outcome = await envoy.request(
        "GET", "/" + PRIVATE_PATH + "?limit=5", cookie_headers(cookie, **{"X-Other": "1"})
    )
    assert outcome.upstream_headers is not None, outcome
    assert outcome.upstream_headers["x-other"] == "1"  # the original request goes on as it was
    claims = await bearer_claims(envoy.client, outcome.upstream_headers["authorization"])
    assert claims["uid"] == user.uid


async def test_cookie_post_with_its_csrf_token_passes(
    envoy: EnvoyHttpExtAuthz, services: Any, clock: Any
) -> None:
    cookie, csrf = await open_session(services, await new_user(services), clock)
    body = b"x" * (2 * 1024**2)  # over the sidecar's body limit: it must never be sent there
    outcome = await envoy.request(
        "POST", "/api/v2/peatio/market/orders", cookie_headers(cookie, csrf=csrf), body
    )
    assert outcome.upstream_headers is not None, outcome
    assert outcome.upstream_headers["authorization"].startswith("Bearer ")


async def test_api_key_request_passes(envoy: EnvoyHttpExtAuthz, services: Any, clock: Any) -> None:
    user = await new_user(services, otp=True)
    key = await services.api_keys.create(holder_id=user.id)
    outcome = await envoy.request("GET", "/" + PRIVATE_PATH, api_key_headers(key, now_ms(clock)))
    assert outcome.upstream_headers is not None, outcome
    assert (await bearer_claims(envoy.client, outcome.upstream_headers["authorization"]))["uid"] == user.uid


async def test_pass_route_never_forwards_a_client_authorization(envoy: EnvoyHttpExtAuthz) -> None:
    outcome = await envoy.request("GET", "/api/v2/barong/public/ping", {"Authorization": "Bearer forged"})
    assert outcome.upstream_headers == {}


async def test_client_ip_from_forwarded_for_reaches_the_restrictions(
    envoy: EnvoyHttpExtAuthz, client: Any, services: Any
) -> None:
    await restrict(client, services, validate_restriction("blacklist", "ip", UK_IP))
    outcome = await envoy.request("GET", "/api/v2/barong/public/ping", {"X-Forwarded-For": UK_IP})
    assert (outcome.status, outcome.body) == (401, b'{"errors":["authz.restrict.blacklist"]}')


@pytest.mark.parametrize(
    ("method", "target", "headers", "status", "key"),
    [
        ("GET", "/" + PRIVATE_PATH, {"User-Agent": "curl"}, 401, "authz.invalid_session"),
        ("POST", "/api/v2/peatio/market/orders", {"User-Agent": "curl"}, 401, "authz.missing_csrf_token"),
        ("GET", "/api/v2/barong/management/users", {}, 401, "authz.permission_denied"),
        ("GET", "/api/v2/barong/admin/users?uid=ID1", {}, 401, "authz.invalid_session"),
    ],
)
async def test_denial_status_and_body_reach_the_client(
    envoy: EnvoyHttpExtAuthz, method: str, target: str, headers: dict[str, str], status: int, key: str
) -> None:
    outcome = await envoy.request(method, target, headers)
    assert outcome.upstream_headers is None
    assert (outcome.status, outcome.body) == (status, f'{{"errors":["{key}"]}}'.encode())
    assert outcome.client_headers["content-type"].startswith("application/json")


async def test_restriction_code_reaches_the_client(
    envoy: EnvoyHttpExtAuthz, client: Any, services: Any
) -> None:
    await restrict(client, services, validate_restriction("maintenance", "all", "all"))
    outcome = await envoy.request("GET", "/api/v2/barong/public/ping", {})
    assert outcome.status == 471
    assert outcome.body == b'{"errors":["authz.restrict.maintenance"]}'


async def test_the_sidecar_allows_only_with_exactly_200(
    envoy: EnvoyHttpExtAuthz, services: Any, clock: Any
) -> None:
    cookie, _ = await open_session(services, await new_user(services), clock)
    statuses = set()
    for target, headers in [
        ("/" + PRIVATE_PATH, cookie_headers(cookie)),
        ("/api/v2/barong/public/ping", {}),
        ("/" + PRIVATE_PATH, {}),
        ("/api/v2/barong/management/users", {}),
    ]:
        check = await envoy.client.get(
            envoy.service.path_prefix + target, headers=envoy.check_headers(headers)
        )
        statuses.add(check.status)
    # Envoy treats any other 2xx (or a 3xx) as a denial: the sidecar never answers one.
    assert statuses == {200, 401}
