"""The decision pipeline through the real endpoint: restrictions → path rules → credentials → permissions.

Restrictions (barong-behavior.md §2.2–2.3 with decisions.md): precedence whitelist > maintenance >
blacklist > blocklogin, every scope including IPv6 addresses and subnets and geo by ISO code or English
name, blocklogin refusing only logins, the whitelink path exempt.  Pass and block rules.  Permissions:
DROP / AUDIT / ALL, with the admin activity written to SQL.  Changes reach the endpoint within a second,
and Redis going away makes the endpoint fail closed with 503 until it comes back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from authz.app import SERVICES
from authz.http.state import STATE
from authz.pipeline import valid_path
from authz.settings import Settings
from identity.models import Permission, Restriction
from identity.restrictions import validate_restriction
from tests.authz.helpers import (
    PRIVATE_PATH,
    UA,
    UK_IP,
    RedisProcess,
    admin_activities,
    api_key_headers,
    cookie_headers,
    decide,
    error,
    eventually,
    fast_settings,
    free_port,
    new_user,
    now_ms,
    open_session,
    start_client,
)

PUBLIC = "api/v2/barong/public/ping"
LOGIN = "api/v2/barong/identity/sessions"
WHITELINK = "api/v2/barong/identity/users/access"
JAPAN_V6 = "2001:db8:1::5"  # the test GeoIP database: 2001:db8:1::/48 is in Japan (Asia)
CHINA = "175.16.199.1"  # China (Asia)
AUSTRALIA = "1.0.0.1"  # Australia (Oceania)
NOWHERE = "8.8.8.8"  # not in the test database


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest settings with a signing key shared by every app of the run (key generation is slow)."""
    return fast_settings(settings)


def restriction(category: str, scope: str, value: str, **kw: Any) -> Restriction:
    return validate_restriction(category, scope, value, **kw)


async def restrict(client: Any, services: Any, *rows: Restriction) -> list[Restriction]:
    """Store ``rows``, announce the change and wait until the app has applied it."""
    added = [await services.restrictions.add(row) for row in rows]
    await _announce_restrictions(client, services)
    return added


async def lift(client: Any, services: Any, rows: list[Restriction]) -> None:
    for row in rows:
        assert row.id is not None and await services.restrictions.delete(row.id)
    await _announce_restrictions(client, services)


async def _announce_restrictions(client: Any, services: Any) -> None:
    enabled = len([row for row in await services.restrictions.list_all() if row.enabled])
    policy = client.app[STATE].policy
    await services.changes.restrictions_changed()

    async def applied() -> int:
        return len(policy.restrictions)

    assert await eventually(applied, lambda size: size == enabled) == enabled


async def status_from(
    client: Any, ip: str, path: str = PUBLIC, method: str = "GET", **headers: str
) -> tuple[int, Any]:
    status, body, _ = await decide(client, method, path, {"X-Forwarded-For": ip, "User-Agent": UA, **headers})
    return status, body


def refused(code: int, category: str) -> tuple[int, Any]:
    return code, error(f"authz.restrict.{category}")


# --- restrictions: scopes -------------------------------------------------------------------------------

#: (scope, value, clients it covers, clients it does not cover) for one blacklist restriction.
SCOPE_CASES = [
    ("all", "all", [UK_IP, JAPAN_V6, NOWHERE, "::1"], []),
    ("ip", UK_IP, [UK_IP], ["81.2.69.11", JAPAN_V6]),
    ("ip", JAPAN_V6, [JAPAN_V6, "2001:0db8:0001:0000:0000:0000:0000:0005"], ["2001:db8:1::6", UK_IP]),
    ("ip", "::ffff:81.2.69.10", [UK_IP, "::ffff:81.2.69.10"], ["81.2.69.11"]),
    ("ip_subnet", "81.2.0.0/16", [UK_IP, "81.2.255.1"], ["81.3.0.1", JAPAN_V6]),
    ("ip_subnet", "2001:db8:1::/48", [JAPAN_V6, "2001:db8:1:ffff::1"], ["2001:db8:2::1", UK_IP]),
    ("ip_subnet", "2001:db8::/32", [JAPAN_V6, "2001:db8:ffff::1"], ["2001:db9::1"]),
    ("continent", "EU", [UK_IP], [JAPAN_V6, AUSTRALIA, NOWHERE]),
    ("continent", "europe", [UK_IP], [JAPAN_V6, NOWHERE]),
    ("continent", "Asia", [JAPAN_V6, CHINA], [UK_IP, AUSTRALIA]),
    ("continent", "as", [JAPAN_V6, CHINA], [UK_IP]),
    ("country", "gb", [UK_IP], [AUSTRALIA, NOWHERE]),
    ("country", "United Kingdom", [UK_IP], [AUSTRALIA, JAPAN_V6]),
    ("country", "JP", [JAPAN_V6], [CHINA, UK_IP]),
    ("country", "japan", [JAPAN_V6], [CHINA]),
    ("country", "AU", [AUSTRALIA], [UK_IP]),
]


async def test_every_restriction_scope_covers_exactly_its_clients(client: Any, services: Any) -> None:
    for scope, value, covered, spared in SCOPE_CASES:
        rows = await restrict(client, services, restriction("blacklist", scope, value))
        code = rows[0].code
        for ip in covered:
            assert await status_from(client, ip) == refused(code, "blacklist"), (scope, value, ip)
        for ip in spared:
            assert await status_from(client, ip) == (200, None), (scope, value, ip)
        await lift(client, services, rows)


async def test_restriction_answers_with_its_own_code(client: Any, services: Any) -> None:
    await restrict(
        client,
        services,
        restriction("blacklist", "ip", UK_IP, code=418),
        restriction("blacklist", "country", "JP"),
        restriction("maintenance", "ip", CHINA),
    )
    assert await status_from(client, UK_IP) == refused(418, "blacklist")
    assert await status_from(client, JAPAN_V6) == refused(423, "blacklist")  # geo default
    assert await status_from(client, CHINA) == refused(471, "maintenance")  # maintenance default


async def test_disabled_restriction_is_ignored(client: Any, services: Any) -> None:
    await services.restrictions.add(restriction("maintenance", "all", "all", state="disabled"))
    await restrict(client, services, restriction("blacklist", "ip", CHINA))
    assert await status_from(client, UK_IP) == (200, None)
    assert (await status_from(client, CHINA))[0] == 401


# --- restrictions: precedence ---------------------------------------------------------------------------

#: (restrictions, client, method and path, expected answer): whitelist > maintenance > blacklist > blocklogin.
PRECEDENCE_CASES = [
    ([("whitelist", "ip", UK_IP), ("maintenance", "all", "all")], UK_IP, ("GET", PUBLIC), (200, None)),
    (
        [("whitelist", "ip", UK_IP), ("maintenance", "all", "all")],
        CHINA,
        ("GET", PUBLIC),
        refused(471, "maintenance"),
    ),
    ([("whitelist", "country", "gb"), ("blacklist", "ip", UK_IP)], UK_IP, ("GET", PUBLIC), (200, None)),
    (
        [("whitelist", "ip_subnet", "81.2.0.0/16"), ("blocklogin", "all", "all")],
        UK_IP,
        ("POST", LOGIN),
        (200, None),
    ),
    (
        [("maintenance", "all", "all"), ("blacklist", "ip", UK_IP)],
        UK_IP,
        ("GET", PUBLIC),
        refused(471, "maintenance"),
    ),
    (
        [("blacklist", "ip", UK_IP), ("maintenance", "ip", UK_IP)],
        UK_IP,
        ("GET", PUBLIC),
        refused(471, "maintenance"),
    ),
    (
        [("blacklist", "ip_subnet", "81.2.0.0/16"), ("blocklogin", "all", "all")],
        UK_IP,
        ("POST", LOGIN),
        refused(403, "blacklist"),
    ),
    (
        [("blacklist", "ip_subnet", "81.2.0.0/16"), ("blocklogin", "all", "all")],
        CHINA,
        ("POST", LOGIN),
        refused(401, "blocklogin"),
    ),
    # Within a category the first matching scope wins, in Barong's order all, ip, ip_subnet, continent, country.
    (
        [("blacklist", "country", "gb"), ("blacklist", "ip", UK_IP, 409)],
        UK_IP,
        ("GET", PUBLIC),
        refused(409, "blacklist"),
    ),
    (
        [("blacklist", "country", "gb"), ("blacklist", "continent", "EU", 410)],
        UK_IP,
        ("GET", PUBLIC),
        refused(410, "blacklist"),
    ),
]


async def test_restriction_categories_apply_in_precedence_order(client: Any, services: Any) -> None:
    for rows, ip, (method, path), expected in PRECEDENCE_CASES:
        stored = await restrict(
            client,
            services,
            *(restriction(c, s, v, code=(extra[0] if extra else None)) for c, s, v, *extra in rows),
        )
        assert await status_from(client, ip, path, method) == expected, (rows, ip, method, path)
        await lift(client, services, stored)


# --- restrictions: blocklogin, whitelink, every kind of path ---------------------------------------------

#: method, path → refused by a blocklogin restriction?  Only logging in is.
BLOCKLOGIN_CASES = [
    ("POST", "api/v2/barong/identity/sessions", True),
    ("POST", "api/v2/identity/sessions", True),
    ("POST", "api/v2/barong/identity/sessions/", True),  # a router ignores the trailing slash
    ("DELETE", "api/v2/barong/identity/sessions", False),
    ("GET", "api/v2/barong/identity/sessions", False),
    # Every endpoint that signs in with a credential, in every spelling the service serves.
    ("POST", "api/v2/barong/identity/sessions/auth0", True),
    ("POST", "api/v2/identity/sessions/auth0", True),
    ("POST", "v1/oauth", True),
    ("POST", "v1/oauth/", True),
    ("POST", "v1/oauth/create", True),
    ("PUT", "v1/oauth", False),  # the token API's refresh continues a session; it is not a login
    ("POST", "api/v2/barong/identity/users", False),
    ("GET", PUBLIC, False),
]


async def test_blocklogin_refuses_only_logins(client: Any, services: Any, clock: Any) -> None:
    await restrict(client, services, restriction("blocklogin", "ip", UK_IP))
    for method, path, blocked in BLOCKLOGIN_CASES:
        expected = refused(401, "blocklogin") if blocked else (200, None)
        assert await status_from(client, UK_IP, path, method) == expected, (method, path)
    assert await status_from(client, CHINA, LOGIN, "POST") == (200, None)
    # A logged-in user from the blocked address keeps working.
    user = await new_user(services)
    cookie, _ = await open_session(services, user, clock)
    assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0] == 200


async def test_whitelink_path_is_exempt_from_restrictions(client: Any, services: Any) -> None:
    await restrict(client, services, restriction("maintenance", "all", "all"))
    for path in (WHITELINK, WHITELINK + "/", "api/v2/identity/users/access"):
        for method in ("GET", "POST", "PUT"):
            assert await status_from(client, UK_IP, path, method) == (200, None), (method, path)
    response = await client.get(
        f"/api/v2/auth/{WHITELINK}?whitelink_token=abc", headers={"X-Forwarded-For": UK_IP}
    )
    assert response.status == 200
    # Only that exact path: its neighbours stay under maintenance.
    for path in (WHITELINK + "/x", WHITELINK + "es", "api/v2/barong/identity/users"):
        assert await status_from(client, UK_IP, path) == refused(471, "maintenance"), path


async def test_restrictions_come_before_every_other_rule(client: Any, services: Any, clock: Any) -> None:
    user = await new_user(services, role="superadmin", otp=True)
    cookie, csrf = await open_session(services, user, clock)
    key = await services.api_keys.create(holder_id=user.id)
    await restrict(client, services, restriction("blacklist", "ip", UK_IP))
    requests = [
        ("GET", PUBLIC, {}),  # a pass rule
        ("GET", "api/v2/barong/management/users", {}),  # a block rule
        ("GET", PRIVATE_PATH, cookie_headers(cookie)),
        ("POST", PRIVATE_PATH, cookie_headers(cookie, csrf=csrf)),
        ("GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock))),
        ("GET", "api/v2/nowhere", {}),
    ]
    for method, path, headers in requests:
        status, body, _ = await decide(client, method, path, {**headers, "X-Forwarded-For": UK_IP})
        assert (status, body) == refused(401, "blacklist"), (method, path)


async def test_added_restriction_is_enforced_within_a_second(client: Any, services: Any) -> None:
    assert await status_from(client, JAPAN_V6) == (200, None)
    row = await services.restrictions.add(validate_restriction("blacklist", "ip_subnet", "2001:db8:1::/64"))
    await services.changes.restrictions_changed()
    answer = await eventually(lambda: status_from(client, JAPAN_V6), lambda got: got[0] != 200, within=1.0)
    assert answer == refused(403, "blacklist")
    assert row.id is not None and await services.restrictions.delete(row.id)
    await services.changes.restrictions_changed()
    answer = await eventually(lambda: status_from(client, JAPAN_V6), lambda got: got[0] == 200, within=1.0)
    assert answer == (200, None)


# --- path rules -----------------------------------------------------------------------------------------

BLOCKED_PATHS = ["api/v2/barong/management/users", "api/v2/peatio/management/deposits", "api/v2/management/x"]
PASSED_PATHS = [
    "api/v2/barong/public/ping",
    "api/v2/barong/identity/sessions",
    "api/v2/peatio/public/markets",
    "api/v2/ranger/public/",
    "api/v2/applogic/public/x",
    "api/v2/arke/public/x",
    "api/v2/finex/public/x",
    "api/v2/public/configs",
    "api/v2/identity/users",
    "api/v2/barong/publicity",  # plain string prefixes, as Barong: no segment boundary
]


async def test_block_rules_refuse_even_valid_credentials(client: Any, services: Any, clock: Any) -> None:
    user = await new_user(services, role="superadmin", otp=True)
    cookie, csrf = await open_session(services, user, clock)
    key = await services.api_keys.create(holder_id=user.id)
    for path in BLOCKED_PATHS:
        for method, headers in [
            ("GET", {}),
            ("GET", cookie_headers(cookie)),
            ("POST", cookie_headers(cookie, csrf=csrf)),
            ("GET", api_key_headers(key, now_ms(clock))),
        ]:
            status, body, answer = await decide(client, method, path, headers)
            assert (status, body) == (401, error("authz.permission_denied")), (method, path)
            assert "Authorization" not in answer


async def test_pass_rules_answer_without_looking_at_credentials(client: Any) -> None:
    junk = [
        {},
        {"X-Auth-Apikey": "", "X-Auth-Nonce": "", "X-Auth-Signature": ""},  # would be 422 elsewhere
        {"Cookie": "_barong_session=" + "f" * 32},  # would be invalid_session elsewhere
        {"Authorization": "Bearer forged"},
    ]
    for path in PASSED_PATHS:
        for method in ("GET", "POST", "DELETE"):
            for headers in junk:
                status, body, answer = await decide(client, method, path, headers)
                assert (status, body) == (200, None), (method, path, headers)
                assert "Authorization" not in answer
                assert answer["x-envoy-auth-headers-to-remove"] == "authorization"


async def test_query_string_is_not_part_of_the_matched_path(client: Any) -> None:
    response = await client.get("/api/v2/auth/api/v2/barong/management/users?next=api/v2/barong/public")
    assert (response.status, await response.json()) == (401, error("authz.permission_denied"))
    response = await client.get("/api/v2/auth/api/v2/peatio/account?next=/api/v2/barong/public")
    assert (response.status, await response.json()) == (401, error("authz.invalid_session"))
    response = await client.get("/api/v2/auth/api/v2/barong/public/ping?uid=x&path=api/v2/barong/admin")
    assert response.status == 200


async def test_block_rule_wins_over_a_pass_rule(
    aiohttp_client: Any, settings: Settings, clock: Any, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  pass: [api/v2/open]\n  block: [api/v2/open/secret]\n")
    client = await start_client(aiohttp_client, settings, clock, rules_file=rules)
    assert (await decide(client, "GET", "api/v2/open/x"))[:2] == (200, None)
    assert (await decide(client, "GET", "api/v2/open/secret/x"))[:2] == (
        401,
        error("authz.permission_denied"),
    )


#: path → acceptable to the pipeline?  Dot and empty segments change meaning when the upstream normalises.
PATH_CASES = [
    ("api/v2//barong/management/users", False),
    ("api/v2/barong/admin//permissions", False),
    ("/api/v2/barong/public", False),
    ("api/v2/x/", True),
    ("api/v2/barong/public/../admin", False),
    ("api/v2/barong/public/./x", False),
    ("..", False),
    ("api/v2/x/.", False),
    ("api/v2/a\\b", False),
    ("api/v2/a\x00b", False),
    ("api/v2/x.json", True),
    ("api/v2/.well-known/x", True),
    ("api/v2/..x/y", True),
    ("api/v2/x../y", True),
    ("", True),
]


def test_dot_and_empty_segments_are_not_valid_paths() -> None:
    for path, valid in PATH_CASES:
        assert valid_path(path) is valid, path


async def test_doubled_slashes_cannot_dodge_a_block_or_drop_rule(
    client: Any, services: Any, clock: Any
) -> None:
    admin = await new_user(services, role="admin")
    cookie, _ = await open_session(services, admin, clock)
    for path in (
        "api/v2//barong/management/users",
        "api/v2/barong/admin//permissions",
        "/api/v2/barong/management",
    ):
        status, body, _ = await decide(client, "GET", path, cookie_headers(cookie))
        assert (status, body) == (400, error("authz.invalid_path")), path
    status, body, _ = await decide(client, "GET", "api/v2/barong/admin/permissions", cookie_headers(cookie))
    assert (status, body) == (401, error("authz.invalid_permission"))


SEMICOLON_PATHS = [
    "api/v2/peatio/public/..;/management/x",  # a servlet upstream resolves this to peatio/management/x
    "api/v2/barong/admin;x/permissions",  # ...and this to barong/admin/permissions
    "api/v2/barong/public;/x",
    "api/v2/peatio/account/balances;jsessionid=1",
    "api/v2/barong/admin%3Bx/permissions",  # decoded before the check
    "api/v2/peatio/public/%252e%252e/management/x",  # double encoding: a '%' survives the decoding
]


async def test_semicolon_path_parameters_and_double_encodings_are_refused(client: Any, services: Any, clock: Any) -> None:
    """Before, the first passed as public and the second gave an admin a JWT for the permissions API."""
    admin = await new_user(services, role="admin")
    cookie, _ = await open_session(services, admin, clock)
    for path in SEMICOLON_PATHS:
        status, body, _ = await decide(client, "GET", path, cookie_headers(cookie))
        assert (status, body) == (400, error("authz.invalid_path")), path
        response = await client.get(
            "/_authz/nginx", headers={"X-Original-Method": "GET", "X-Original-URI": "/" + path, **cookie_headers(cookie)}
        )
        assert (response.status, response.headers.get("X-Authz-Error")) == (403, "authz.invalid_path"), path
    assert not valid_path("api/v2/a;b") and valid_path("api/v2/a,b")


async def test_a_method_override_header_is_refused(client: Any, services: Any, clock: Any) -> None:
    """Before, a member's POST with ``X-HTTP-Method-Override: DELETE`` was decided as a POST (200 + JWT),
    while a Rack upstream serves it as the DELETE that a DROP row may refuse."""
    member = await new_user(services)
    cookie, csrf = await open_session(services, member, clock)
    for name in ("X-HTTP-Method-Override", "x-http-method", "X-Method-Override"):
        headers = cookie_headers(cookie, csrf=csrf, **{name: "DELETE"})
        status, body, _ = await decide(client, "POST", PRIVATE_PATH, headers)
        assert (status, body) == (400, error("authz.invalid_method_override")), name
        response = await client.get(
            "/_authz/nginx", headers={"X-Original-Method": "POST", "X-Original-URI": "/" + PRIVATE_PATH, **headers}
        )
        assert response.headers.get("X-Authz-Error") == "authz.invalid_method_override", name
    assert (await decide(client, "POST", PRIVATE_PATH, cookie_headers(cookie, csrf=csrf)))[0] == 200


# --- permissions: ALL, DROP, AUDIT, with the admin activities -------------------------------------------

TESTER_PERMISSIONS = [
    Permission("tester", "ALL", "api/v2/tester", "ACCEPT"),
    Permission("tester", "GET", "api/v2/getonly", "ACCEPT"),
    Permission("tester", "ALL", "api/v2/tester/dropped", "DROP"),
    Permission("tester", "POST", "api/v2/tester/readonly", "DROP"),
    Permission("tester", "POST", "api/v2/tester/audited", "AUDIT", topic="tester-topic"),
    Permission("tester", "ALL", "api/v2/tester/audited", "AUDIT", topic="second-topic"),
    Permission("tester", "ALL", "api/v2/auditonly", "AUDIT", topic="never"),
    Permission("tester", "ALL", "/api/v2/slash", "ACCEPT"),
]

#: (method, path, allowed, admin activity written as (result, topic, action) or None).
PERMISSION_CASES = [
    ("GET", "api/v2/tester/x", True, None),
    ("PATCH", "api/v2/tester/x", True, None),  # ALL: every verb
    ("HEAD", "api/v2/tester/x", True, None),
    ("GET", "api/v2/getonly/x", True, None),
    ("HEAD", "api/v2/getonly/x", False, ("denied", "general", "system")),  # HEAD is not GET
    ("POST", "api/v2/getonly/x", False, ("denied", "general", "create")),
    ("GET", "api/v2/tester/dropped/x", False, ("denied", "general", "read")),  # DROP beats ACCEPT
    ("GET", "api/v2/tester/readonly", True, None),
    ("POST", "api/v2/tester/readonly", False, ("denied", "general", "create")),
    # Two AUDIT rows match a POST: the first one's topic is recorded.
    ("POST", "api/v2/tester/audited/x", True, ("succeed", "tester-topic", "create")),
    ("PUT", "api/v2/tester/audited/x", True, ("succeed", "second-topic", "update")),
    ("DELETE", "api/v2/tester/audited", True, ("succeed", "second-topic", "delete")),
    ("GET", "api/v2/auditonly/x", False, ("denied", "general", "read")),  # AUDIT without ACCEPT
    ("GET", "api/v2/slash", False, ("denied", "general", "read")),  # a stored leading "/" never matches
    ("GET", "api/v2/nothing/admin/markets", False, ("denied", "markets", "read")),  # nothing matches
]


async def test_permission_actions_and_their_admin_activities(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any
) -> None:
    await services.permissions.add_many(TESTER_PERMISSIONS)
    client = await start_client(aiohttp_client, settings, clock)
    user = await new_user(services, role="tester")
    cookie, csrf = await open_session(services, user, clock)
    expected = []
    for method, path, allowed, activity in PERMISSION_CASES:
        status, body, headers = await decide(client, method, path, cookie_headers(cookie, csrf=csrf))
        if allowed:
            assert status == 200 and headers["Authorization"].startswith("Bearer "), (method, path)
        else:
            body_expected = None if method == "HEAD" else error("authz.invalid_permission")  # HEAD: no body
            assert (status, body) == (401, body_expected), (method, path)
        if activity is not None:
            expected.append((*activity, orjson.dumps({"path": path}).decode()))
    found = await admin_activities(services, len(expected))
    assert [(a.result, a.topic, a.action, a.data) for a in found] == expected
    assert {(a.user_id, a.category, a.user_ip, a.user_agent, a.user_ip_country) for a in found} == {
        (user.id, "admin", UK_IP, UA, "United Kingdom")
    }


async def test_default_roles_drop_and_audit_admin_paths(client: Any, services: Any, clock: Any) -> None:
    admin = await new_user(services, role="admin")
    admin_cookie, admin_csrf = await open_session(services, admin, clock)
    target = await new_user(services)
    # admin: DROP ALL api/v2/barong/admin/permissions despite ACCEPT ALL api/v2
    status, body, _ = await decide(
        client, "GET", "api/v2/barong/admin/permissions", cookie_headers(admin_cookie)
    )
    assert (status, body) == (401, error("authz.invalid_permission"))
    # admin: AUDIT PUT api/v2/ (no topic: the segment after admin/), target from the uid parameter
    status, _, _ = await decide(
        client,
        "PUT",
        "api/v2/barong/admin/users",
        cookie_headers(admin_cookie, csrf=admin_csrf),
        params={"uid": target.uid, "state": "banned"},
    )
    assert status == 200
    # member: nothing matches the admin API
    member = await new_user(services)
    member_cookie, _ = await open_session(services, member, clock)
    status, body, _ = await decide(
        client, "GET", "api/v2/peatio/admin/markets", cookie_headers(member_cookie)
    )
    assert (status, body) == (401, error("authz.invalid_permission"))
    found = await admin_activities(services, 3)
    summary = [(a.user_id, a.result, a.topic, a.action, a.target_uid) for a in found]
    assert summary == [
        (admin.id, "denied", "permissions", "read", None),
        (admin.id, "succeed", "users", "update", target.uid),
        (member.id, "denied", "markets", "read", None),
    ]
    assert orjson.loads(found[1].data) == {
        "uid": target.uid,
        "state": "banned",
        "path": "api/v2/barong/admin/users",
    }


async def test_superadmin_writes_are_audited_and_reads_are_not(
    client: Any, services: Any, clock: Any
) -> None:
    superadmin = await new_user(services, role="superadmin")
    cookie, csrf = await open_session(services, superadmin, clock)
    for method, path in [
        ("POST", "api/v2/peatio/admin/markets/new"),
        ("GET", "api/v2/peatio/admin/markets"),
        ("DELETE", "api/v2/barong/admin/api_keys/1"),
    ]:
        status, _, _ = await decide(client, method, path, cookie_headers(cookie, csrf=csrf))
        assert status == 200, (method, path)
    # The recorder writes in order: once the DELETE is in SQL, an audited GET would be there too.
    found = await admin_activities(services, 2)
    assert [(a.user_id, a.result, a.topic, a.action) for a in found] == [
        (superadmin.id, "succeed", "markets", "create"),
        (superadmin.id, "succeed", "api_keys", "delete"),
    ]


async def test_api_key_requests_are_audited_too(client: Any, services: Any, clock: Any) -> None:
    admin = await new_user(services, role="admin", otp=True)
    key = await services.api_keys.create(holder_id=admin.id)
    headers = api_key_headers(key, now_ms(clock))
    path = "api/v2/barong/admin/permissions/1"
    status, body, _ = await decide(client, "DELETE", path, headers, params={"user_uid": "ID0123456789"})
    assert (status, body) == (401, error("authz.invalid_permission"))
    found = await admin_activities(services, 1)
    assert [(a.user_id, a.result, a.topic, a.action, a.target_uid) for a in found] == [
        (admin.id, "denied", "permissions", "delete", "ID0123456789")
    ]


async def test_no_activity_is_written_without_a_user_agent(client: Any, services: Any, clock: Any) -> None:
    member = await new_user(services)
    anonymous_cookie, _ = await open_session(services, member, clock, user_agent="")
    response = await client.get(
        "/api/v2/auth/api/v2/barong/admin/users",
        headers=cookie_headers(anonymous_cookie, user_agent=None),
        skip_auto_headers=["User-Agent"],
    )
    assert (response.status, await response.json()) == (401, error("authz.invalid_permission"))
    cookie, _ = await open_session(services, member, clock)
    status, _, _ = await decide(client, "GET", "api/v2/barong/admin/labels", cookie_headers(cookie))
    assert status == 401
    # The recorder writes in order: once the second denial is in SQL, the first would be too.
    found = await admin_activities(services, 1)
    assert [a.topic for a in found] == ["labels"]


async def test_permission_change_is_enforced_within_a_second(client: Any, services: Any, clock: Any) -> None:
    user = await new_user(services)
    cookie, _ = await open_session(services, user, clock)
    path = "api/v2/barong/admin/users"

    async def answer() -> int:
        return (await decide(client, "GET", path, cookie_headers(cookie)))[0]

    assert await answer() == 401
    await services.permissions.add_many([Permission("member", "GET", "api/v2/barong/admin", "ACCEPT")])
    await services.changes.permissions_changed()
    assert await eventually(answer, lambda status: status == 200, within=1.0) == 200
    await services.permissions.add_many([Permission("member", "ALL", "api/v2/barong/admin/users", "DROP")])
    await services.changes.permissions_changed()
    assert await eventually(answer, lambda status: status == 401, within=1.0) == 401


# --- Redis unreachable: fail closed, recover by itself ----------------------------------------------------


@pytest.fixture
async def private_redis() -> Any:
    server = RedisProcess(free_port())
    await server.start()
    try:
        yield server
    finally:
        server.kill()


UNAVAILABLE = (503, error("authz.unavailable"))


async def _outage_client(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any, redis: RedisProcess
) -> tuple[Any, Any, Any]:
    """The app on ``redis`` with a 0.3 s Redis timeout, and two probes (cookie, API key) that pass now."""
    client = await start_client(aiohttp_client, settings, clock, redis_url=redis.url, redis_timeout=0.3)
    app_services = client.app[SERVICES]
    user = await new_user(services, otp=True)
    key = await services.api_keys.create(holder_id=user.id)
    cookie = (await open_session(app_services, user, clock))[0]
    nonce = now_ms(clock)

    async def by_cookie() -> tuple[int, Any]:
        return (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[:2]

    async def by_api_key() -> tuple[int, Any]:
        nonlocal nonce
        nonce += 1
        return (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, nonce)))[:2]

    # Both pass, and the key, its holder and the session's user are now cached in the app.
    assert (await by_cookie())[0] == 200
    assert (await by_api_key())[0] == 200
    return client, by_cookie, by_api_key


async def test_redis_outage_fails_closed_and_recovers_by_itself(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any, private_redis: RedisProcess
) -> None:
    client, by_cookie, by_api_key = await _outage_client(
        aiohttp_client, settings, services, clock, private_redis
    )

    private_redis.kill()
    # A decision racing the kill may still be answered from the in-process cache; within the Redis
    # timeout (0.3 s) the change listener has noticed, the caches are bypassed and every decision is 503.
    assert await eventually(by_cookie, lambda got: got == UNAVAILABLE, within=0.3 + 0.5) == UNAVAILABLE
    for _ in range(3):  # not once, then a cached answer: every decision while Redis is away
        assert await asyncio.wait_for(by_cookie(), timeout=10) == UNAVAILABLE
        assert await asyncio.wait_for(by_api_key(), timeout=10) == UNAVAILABLE

    await private_redis.start()
    assert (await eventually(by_api_key, lambda got: got[0] == 200, within=5.0))[0] == 200
    # The sessions lived in the Redis that went away; a new one works without restarting the app.
    assert await by_cookie() == (401, error("authz.invalid_session"))
    user = await new_user(services)
    cookie = (await open_session(client.app[SERVICES], user, clock))[0]
    assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0] == 200


async def test_unresponsive_redis_is_answered_503_within_the_redis_timeout(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any, private_redis: RedisProcess
) -> None:
    _, by_cookie, by_api_key = await _outage_client(aiohttp_client, settings, services, clock, private_redis)
    private_redis.pause()
    try:
        # Cached answers are trusted only while Redis answered a ping within the 0.3 s Redis timeout, so
        # from then on every decision goes to the frozen Redis and is refused after that timeout. The
        # bounds are that timeout plus slack for a loaded machine, not a speed target: a decision that
        # waited on a frozen Redis (or retried) would hang here for seconds.
        assert await eventually(by_cookie, lambda got: got == UNAVAILABLE, within=0.3 + 0.5) == UNAVAILABLE
        assert await asyncio.wait_for(by_cookie(), timeout=1.5) == UNAVAILABLE
        assert await asyncio.wait_for(by_api_key(), timeout=1.5) == UNAVAILABLE
    finally:
        private_redis.resume()
    assert (await eventually(by_api_key, lambda got: got[0] == 200, within=5.0))[0] == 200
    assert (await by_cookie())[0] == 200


async def test_frozen_redis_marks_the_change_channel_down(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any, private_redis: RedisProcess
) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the database plays no part; one backend is enough")
    client = await start_client(
        aiohttp_client, settings, clock, redis_url=private_redis.url, redis_timeout=0.3
    )

    async def channel() -> str:
        return str((await (await client.get("/readyz")).json())["checks"]["invalidation"])

    assert await eventually(channel, lambda state: state == "ok") == "ok"
    private_redis.pause()
    try:
        # The listener pings every second with a one-second timeout: two seconds is its own bound.
        assert await eventually(channel, lambda state: state != "ok", within=2.5) != "ok"
    finally:
        private_redis.resume()


async def test_activities_still_queued_at_shutdown_are_written(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any
) -> None:
    client = await start_client(aiohttp_client, settings, clock)
    member = await new_user(services)
    cookie, _ = await open_session(services, member, clock)
    for topic in ("users", "labels", "profiles"):
        status, _, _ = await decide(client, "GET", f"api/v2/barong/admin/{topic}", cookie_headers(cookie))
        assert status == 401
    await client.close()  # shuts the app down: the recorder must finish what it holds, not drop it
    found = await services.activities.list(category="admin")
    assert [a.topic for a in found] == ["users", "labels", "profiles"]
