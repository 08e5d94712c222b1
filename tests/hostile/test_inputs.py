"""Hostile input, table-driven, against every API: each request gets a 4xx with the API's error body
(``{"errors": [...]}``, or the token API's ``{"code", "message"}``), never a 5xx, and writes nothing.

Requests whose path or headers the client would normalise or refuse go out on a raw socket.  Everything
here runs on SQLite: the input handling under test is the same on both databases.  A NUL character, which
only PostgreSQL cannot store, and JSON nested too deep are tried on both, in every documented parameter,
by ``test_every_endpoint.py``.
"""

from __future__ import annotations

from typing import Any

import jwt
import orjson
import pytest
from sqlalchemy import text

from identity.restrictions import validate_restriction
from tests.authz.helpers import signing_key_pem
from tests.hostile.helpers import (
    BODIES,
    CRLF,
    SQL,
    errors_body,
    financelime_body,
    foreign_key_pem,
    hostile_objects,
    hs256_with_public_key,
    raw_request,
    unsigned_jwt,
)
from tests.identity.financelime.helpers import DEVICE
from tests.identity.financelime.helpers import headers as token_headers
from tests.identity.helpers import UA, browser, cheap_argon2, login, with_cookie
from tests.resource.helpers import bearer, jwt_for

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

IDENTITY = "/api/v2/barong/identity"
ME = "/api/v2/barong/resource/users/me"
API_KEYS = "/api/v2/barong/resource/api_keys"
ADMIN_PERMISSIONS = "/api/v2/barong/admin/permissions"
ADMIN_USERS = "/api/v2/barong/admin/users"
MEMBERS_PATH = "api/v2/peatio/account/balances"


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


async def count(services: Any, table: str) -> int:
    async with services.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def expect_errors(response: Any, case: str, *allowed: int) -> list[str]:
    """The error keys of a refusal (4xx, ``{"errors": [...]}``, no cookie set); ``allowed``: its statuses."""
    body = await response.read()
    assert 400 <= response.status < 500, (case, response.status, body[:300])
    assert not allowed or response.status in allowed, (case, response.status, body[:300])
    assert "Set-Cookie" not in response.headers, case
    return errors_body(body)


async def expect_financelime(response: Any, case: str) -> str:
    body = await response.read()
    assert 400 <= response.status < 500, (case, response.status, body[:300])
    return financelime_body(body, response.status)


async def send_bodies(
    api: Any, method: str, path: str, fields: tuple[str, ...], *, valid: tuple[str, ...] = (), **headers: str
) -> list[Any]:
    """Every hostile body to ``path``: the JSON objects with hostile ``fields`` (but the ``valid`` cases),
    then the raw ones."""
    responses = []
    for case, obj in hostile_objects(*fields):
        if case in valid:
            continue
        response = await api.request(method, path, json=obj, headers=headers)
        responses.append((case, response))
    for case, raw, content_type in BODIES:
        response = await api.request(
            method, path, data=raw, headers={**headers, "Content-Type": content_type}
        )
        responses.append((case, response))
    too_large = b'{"email": "' + b"a" * (2 * 1024**2) + b'"}'
    response = await api.request(
        method, path, data=too_large, headers={**headers, "Content-Type": "application/json"}
    )
    responses.append(("2 MB body", response))
    return responses


# --- identity API --------------------------------------------------------------------------------------


async def test_login_refuses_hostile_bodies(api: Any, services: Any, make_user: Any) -> None:
    await make_user(email="victim@example.com")
    before = await count(services, "users")
    for case, response in await send_bodies(
        api, "POST", f"{IDENTITY}/sessions", ("email", "password"), **browser()
    ):
        await expect_errors(response, case)
    # SQL in the e-mail of a real account's login is just a wrong e-mail.
    response = await api.post(
        f"{IDENTITY}/sessions",
        json={"email": f"victim@example.com' --{SQL}", "password": SQL},
        headers=browser(),
    )
    assert await expect_errors(response, "sql login", 401) == ["identity.session.invalid_params"]
    assert await count(services, "users") == before


async def test_sign_up_refuses_hostile_bodies_and_writes_nothing(
    api: Any, services: Any, make_user: Any
) -> None:
    await make_user()  # not the first account: no superadmin short cut
    before = await count(services, "users")
    fields = ("email", "password", "username", "refid", "data")
    for case, response in await send_bodies(api, "POST", f"{IDENTITY}/users", fields, **browser()):
        await expect_errors(response, case)
    strong = "Tr0ub4dor&3-horse-battery"
    for case, body in [
        ("sql e-mail", {"email": SQL, "password": strong}),
        ("crlf e-mail", {"email": f"a@example.com{CRLF}", "password": strong}),
        ("1 MB password", {"email": "new@example.com", "password": "Aa1!" * 250_000}),
        ("data not json", {"email": "new@example.com", "password": strong, "data": "{not json"}),
        ("refid unknown", {"email": "new@example.com", "password": strong, "refid": SQL}),
    ]:
        await expect_errors(await api.post(f"{IDENTITY}/users", json=body, headers=browser()), case)
    assert await count(services, "users") == before


# --- decision endpoint and nginx reader ------------------------------------------------------------------

TRAVERSALS = [
    "/api/v2/auth/api/v2/peatio/../barong/admin/users",
    "/api/v2/auth/api/v2/peatio/%2e%2e/barong/admin/users",
    "/api/v2/auth/api/v2/peatio/%2E%2E/%2e%2e/admin",
    "/api/v2/auth/api/v2/peatio/./account",
    "/api/v2/auth/api/v2//peatio/account/balances",
    "/api/v2/auth//api/v2/peatio/account/balances",
    "/api/v2/auth/api/v2/peatio\\..\\admin",
    "/api/v2/auth/api/v2/peatio/%5c..%5cadmin",
    "/api/v2/auth/api/v2/peatio/account%00/balances",
    "/api/v2/auth/api/v2/peatio/%2fadmin",
]
ODD_PATHS = ["/api/v2/auth/api/v2/peatio/" + "a" * 7000, "/api/v2/auth/api/v2/peatio/%ff%fe"]


async def test_decision_endpoint_refuses_path_traversal(api: Any, make_user: Any) -> None:
    account = await make_user()
    cookie, _ = await login(api, account)
    for path in TRAVERSALS + ODD_PATHS:
        head = f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {UA}\r\nX-Forwarded-For: 81.2.69.10\r\n"
        head += f"Cookie: _barong_session={cookie}"
        response = await raw_request(api, head.encode("latin-1"))
        assert 400 <= response.status < 500, (path, response.status, response.body[:200])
        assert "authorization" not in response.headers, path
        keys = errors_body(response.body)
        assert path not in TRAVERSALS or (response.status, keys) == (400, ["authz.invalid_path"]), path


async def test_nginx_reader_refuses_hostile_original_uri(api: Any, make_user: Any) -> None:
    account = await make_user()
    cookie, _ = await login(api, account)
    uris = [t.removeprefix("/api/v2/auth") for t in TRAVERSALS + ODD_PATHS] + [
        "",
        "relative/path",
        "http://evil/x",
        "/" * 5000,
    ]
    for uri in uris:
        head = f"GET /_authz/nginx HTTP/1.1\r\nHost: x\r\nX-Original-Method: GET\r\nX-Original-URI: {uri}\r\n"
        head += f"User-Agent: t\r\nCookie: _barong_session={cookie}"
        response = await raw_request(api, head.encode("latin-1"))
        assert response.status in (401, 403), (uri, response.status, response.body[:200])
        assert "authorization" not in response.headers, uri
        assert 400 <= int(response.headers["x-authz-status"]) < 500, uri
        errors_body(response.body)
    for method in ["", "get", "G E T", "X" * 100]:
        head = f"GET /_authz/nginx HTTP/1.1\r\nHost: x\r\nX-Original-Method: {method}\r\nX-Original-URI: /api/v2/x"
        response = await raw_request(api, head.encode())
        assert response.status == 403 and response.headers["x-authz-status"] == "400", method


def _forged_tokens(valid: str, clock: Any) -> dict[str, str]:
    """Forgeries of ``valid`` (a JWT of the service): no signature, algorithm confusion, bad times."""
    header = jwt.get_unverified_header(valid)
    claims = jwt.decode(valid, options={"verify_signature": False})
    key = signing_key_pem()
    kid = header.get("kid")
    return {
        "alg none": unsigned_jwt(claims, {"alg": "none", "typ": "JWT", "kid": kid}),
        "alg None": unsigned_jwt(claims, {"alg": "None", "kid": kid}),
        "HS256 with the public key": hs256_with_public_key(claims, kid),
        "expired": jwt.encode(
            {**claims, "exp": int(clock.now) - 3600, "iat": int(clock.now) - 7200},
            key,
            algorithm="RS256",
            headers={"kid": kid},
        ),
        "future iat": jwt.encode(
            {**claims, "iat": int(clock.now) + 3600, "exp": int(clock.now) + 7200},
            key,
            algorithm="RS256",
            headers={"kid": kid},
        ),
        "foreign key": jwt.encode(claims, foreign_key_pem(), algorithm="RS256", headers={"kid": kid}),
        "injected kid": unsigned_jwt(claims, {"alg": "RS256", "kid": "x' OR 1=1 --"}) + "c2ln",
        "tampered": valid[:-6] + ("AAAAAA" if not valid.endswith("AAAAAA") else "BBBBBB"),
        "garbage": "a.b.c",
        "not base64": "!!!.@@@.###",
        "json header bomb": unsigned_jwt(claims, {"alg": "RS256", "x": [[[[[]]]]]}).rstrip(".") + ".e30",
        "huge": "e" * 6000,
        "empty": "",
    }


async def test_decision_endpoint_refuses_malformed_credentials(api: Any, make_user: Any, clock: Any) -> None:
    account = await make_user()
    cookie, _ = await login(api, account)
    decide = f"/api/v2/auth/{MEMBERS_PATH}"
    upstream = (
        (await api.get(decide, headers=with_cookie(cookie))).headers["Authorization"].removeprefix("Bearer ")
    )
    cookies = [
        "_barong_session=",
        '_barong_session="unterminated',
        "_barong_session=" + "a" * 6000,
        f"_barong_session={SQL.replace(';', '')}",
        "_barong_session=a; _barong_session=b",
        ";;;=;=;",
        "=" * 100,
        "_barong_session=%00%0d%0a",
    ]
    for value in cookies:
        response = await api.get(decide, headers={**browser(), "Cookie": value})
        await expect_errors(response, value[:40], 401)
    api_keys = [
        {"X-Auth-Apikey": "", "X-Auth-Nonce": "", "X-Auth-Signature": ""},
        {"X-Auth-Apikey": "abc"},
        {"X-Auth-Apikey": SQL, "X-Auth-Nonce": "1", "X-Auth-Signature": "00"},
        {"X-Auth-Apikey": "a" * 6000, "X-Auth-Nonce": "9" * 4000, "X-Auth-Signature": "zz"},
        {
            "X-Auth-Apikey": "abc",
            "X-Auth-Nonce": "-1e999999",
            "X-Auth-Signature": "\u00ff".encode().decode("latin-1"),
        },
        {"X-Auth-Apikey": "abc", "X-Auth-Nonce": "NaN", "X-Auth-Signature": "g" * 64},
    ]
    for headers in api_keys:
        response = await api.get(decide, headers={**browser(), **headers})
        await expect_errors(response, str(headers)[:60], 401, 422)
    for case, token in _forged_tokens(upstream, clock).items():
        response = await api.get(decide, headers={**browser(), "Authorization": f"Bearer {token}"})
        await expect_errors(response, case, 401)
    for value in ["Bearer", "Bearer  ", "Basic " + "a" * 6000, "bearer\ta.b.c", "Bearer a b c"]:
        response = await api.get(decide, headers={**browser(), "Authorization": value})
        await expect_errors(response, value[:20], 401)


async def test_non_ascii_credentials_are_refused(api: Any) -> None:
    """Header bytes beyond ASCII (obs-text: aiohttp decodes them as Latin-1 or UTF-8 surrogates)."""
    decide = b"GET /api/v2/auth/api/v2/peatio/account/balances HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n"
    for header in [
        b"Cookie: _barong_session=\xff\xfe\xc3\x28",
        b"Cookie: \xff=\xff",
        b"Authorization: Bearer \xff\xfe.\xc3\x28.\x80",
        b"X-Auth-Apikey: \xff\r\nX-Auth-Nonce: \xfe\r\nX-Auth-Signature: \x80",
        b"X-Forwarded-For: \xff\xfe",
    ]:
        response = await raw_request(api, decide + header)
        assert response.status in (400, 401, 422), (header, response.status, response.body[:200])
        errors_body(response.body)
    login = b"POST /api/v2/barong/identity/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    body = b'{"email": "a@example.com", "password": "x"}'
    for header in [
        b"User-Agent: \xff\xfe\xc3\x28",
        b"X-Forwarded-For: \xff",
        b"Cookie: _barong_session=\xff",
    ]:
        head = login + header + b"\r\nContent-Length: %d" % len(body)
        response = await raw_request(api, head, body)
        assert response.status == 401, (header, response.status, response.body[:200])
        errors_body(response.body)


async def test_non_ascii_headers_of_real_credentials_fail_cleanly(
    api: Any, make_user: Any, services: Any, clock: Any
) -> None:
    account = await make_user()
    key = await services.api_keys.create(holder_id=account.user.id, algorithm="HS256")
    nonce = str(int(clock.now * 1000)).encode()
    decide = b"GET /api/v2/auth/api/v2/peatio/account/balances HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n"
    for nonce_bytes, signature, expected in [
        (nonce + b"\xff", b"00", "authz.nonce_not_valid_timestamp"),
        (nonce, b"\xff\xfe" * 32, "authz.invalid_signature"),
    ]:
        head = decide + b"X-Auth-Apikey: %s\r\nX-Auth-Nonce: %s\r\nX-Auth-Signature: %s" % (
            key.kid.encode(),
            nonce_bytes,
            signature,
        )
        response = await raw_request(api, head)
        assert (response.status, errors_body(response.body)) == (401, [expected]), response.body
    cookie, body = await login(api, account)
    post = (
        b"POST /api/v2/auth/api/v2/peatio/account/orders HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\n"
        % UA.encode()
    )
    head = post + b"X-Forwarded-For: 81.2.69.10\r\nCookie: _barong_session=%s\r\nX-CSRF-Token: \xff%s" % (
        cookie.encode(),
        body["csrf_token"][1:].encode(),
    )
    response = await raw_request(api, head)
    assert (response.status, errors_body(response.body)) == (401, ["authz.csrf_token_mismatch"])
    # A browser whose User-Agent is not ASCII signs up, logs in (and fails to) like any other.
    agent = b"Mozilla/5.0 \xff\xfe\xc3\x28"
    for path, fields, status in [
        (f"{IDENTITY}/sessions", {"email": account.user.email, "password": "wrong"}, 401),
        (f"{IDENTITY}/sessions", {"email": account.user.email, "password": account.password}, 200),
        (f"{IDENTITY}/users", {"email": "agent@example.com", "password": "Tr0ub4dor&3-horse-battery"}, 201),
    ]:
        payload = orjson.dumps(fields)
        head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nUser-Agent: %s\r\n" % (
            path.encode(),
            agent,
        )
        response = await raw_request(api, head + b"Content-Length: %d" % len(payload), payload)
        assert response.status == status, (path, response.status, response.body[:300])


async def test_oversized_and_malformed_headers_are_refused(api: Any) -> None:
    cases = {
        "huge header value": b"GET /api/v2/barong/identity/ping HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 70_000,
        "huge cookie": b"GET /api/v2/auth/api/v2/x HTTP/1.1\r\nHost: x\r\nCookie: " + b"a=" + b"b" * 70_000,
        "many headers": b"GET /api/v2/barong/identity/ping HTTP/1.1\r\nHost: x\r\n"
        + b"\r\n".join(b"X-H%d: v" % i for i in range(300)),
        "huge request line": b"GET /api/v2/auth/" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x",
        "bare CR in a value": b"GET /api/v2/barong/identity/ping HTTP/1.1\r\nHost: x\r\nX-A: a\rb",
        "NUL in a value": b"GET /api/v2/auth/api/v2/x HTTP/1.1\r\nHost: x\r\nCookie: _barong_session=a\x00b",
        "header without colon": b"GET /api/v2/barong/identity/ping HTTP/1.1\r\nHost: x\r\nno colon here",
        "obsolete line folding": b"GET /api/v2/barong/identity/ping HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b",
    }
    for case, head in cases.items():
        response = await raw_request(api, head)
        # aiohttp's HTTP parser refuses these before any route or response hook runs: its own 400 in
        # plain text (no application code is reached, so there is nothing to shape).
        assert response.status == 400, (case, response.status, response.body[:200])
        assert response.headers["content-type"].startswith("text/plain"), case


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(make_client: Any, services: Any) -> None:
    """The test client connects from 127.0.0.1; with no trusted proxies its ``X-Forwarded-For`` is a forgery
    and the blacklisted peer address still applies."""
    await services.restrictions.add(validate_restriction("blacklist", "ip", "127.0.0.1"))
    api = await make_client(trusted_proxies=())
    for forged in ["81.2.69.10", "81.2.69.10, 10.0.0.1", "::1", "not-an-ip", "1.1.1.1\r\nX-A: b", "a" * 6000]:
        head = f"GET /api/v2/auth/api/v2/barong/identity/ping HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {forged}\r\n"
        head += f"X-Real-IP: {forged}\r\nTrue-Client-IP: {forged}\r\nCF-Connecting-IP: {forged}"
        response = await raw_request(api, head.encode())
        assert 400 <= response.status < 500 and response.status != 404, (forged, response.status)
        assert errors_body(response.body) == ["authz.restrict.blacklist"], forged


# --- resource and admin APIs (bearer JWT) -------------------------------------------------------------


async def test_resource_api_refuses_forged_jwts_and_hostile_bodies(
    api: Any, make_user: Any, clock: Any, services: Any
) -> None:
    account = await make_user()
    token = await jwt_for(api, account)
    for case, forged in _forged_tokens(token.removeprefix("Bearer "), clock).items():
        for method in ("GET", "PUT", "DELETE"):
            response = await api.request(method, ME, headers=bearer(f"Bearer {forged}"), json={"data": "{}"})
            assert await expect_errors(response, f"{method} {case}", 401) == ["jwt.decode_and_verify"]
    user_before = (await services.users.get_by_uid(account.user.uid)).data
    for case, response in await send_bodies(api, "PUT", ME, ("data",), valid=("object",), **bearer(token)):
        await expect_errors(response, case)
    for case, response in await send_bodies(
        api, "POST", API_KEYS, ("algorithm", "totp_code", "scope"), **bearer(token)
    ):
        await expect_errors(response, case)
    for query in [
        "?page=-1",
        "?limit=1e999999",
        "?page=" + "9" * 5000,
        f"?ordering={SQL}",
        "?order_by=kid;DROP",
    ]:
        await expect_errors(await api.get(API_KEYS + query, headers=bearer(token)), query[:30])
    assert (await services.users.get_by_uid(account.user.uid)).data == user_before
    assert await count(services, "api_keys") == 0


async def test_admin_api_refuses_forged_jwts_and_hostile_bodies(
    api: Any, make_user: Any, clock: Any, services: Any
) -> None:
    admin = await make_user(role="superadmin")
    token = await jwt_for(api, admin, path="api/v2/barong/admin/users")
    for case, forged in _forged_tokens(token.removeprefix("Bearer "), clock).items():
        response = await api.get(ADMIN_USERS, headers=bearer(f"Bearer {forged}"))
        assert await expect_errors(response, case, 401) == ["jwt.decode_and_verify"]
    before = await count(services, "permissions")
    fields = ("role", "verb", "path", "action", "topic")
    for case, response in await send_bodies(api, "POST", ADMIN_PERMISSIONS, fields, **bearer(token)):
        await expect_errors(response, case)
    for query in [
        "?page=0",
        "?limit=" + "9" * 400,
        f"?email={SQL}&uid={CRLF}",
        "?range=created&from=x&to=y",
        "?extended=maybe",
        "?level=99999999999",
        "?page=" + "9" * 5000,
        "?from=" + "9" * 5000,
        "?ordering=sideways",
        "?level=1e999999",
    ]:
        response = await api.get(ADMIN_USERS + query, headers=bearer(token))
        assert response.status < 500, (query, response.status, await response.text())
        if response.status >= 400:
            await expect_errors(response, query)
    assert await count(services, "permissions") == before
    restrictions = "/api/v2/barong/admin/restrictions"
    for code in ["9" * 5000, 10**12, "-" + "9" * 30, 1e308]:
        body = {"scope": "ip", "category": "blacklist", "value": "1.2.3.4", "code": code}
        await expect_errors(
            await api.post(restrictions, json=body, headers=bearer(token)), f"code {code!s:.20}"
        )
    for expire in ["9" * 5000, 10**18]:
        body = {"expire_time": expire, "range": "day"}
        await expect_errors(
            await api.post(f"{restrictions}/whitelink", json=body, headers=bearer(token)), "expire"
        )
    assert await count(services, "restrictions") == 0


# --- token API (Financelime) ----------------------------------------------------------------------------


async def test_token_api_refuses_hostile_input(api: Any, make_user: Any, clock: Any, services: Any) -> None:
    account = await make_user()
    before = await count(services, "users")
    login_body = {
        "clientID": "PWA",
        "device": DEVICE,
        "email": account.user.email,
        "password": account.password,
    }
    tokens = await (await api.post("/v1/oauth", json=login_body, headers=token_headers())).json()
    fields_of = {
        ("POST", "/v1/user"): ("email", "inviteCode", "language"),
        ("POST", "/v1/oauth"): ("clientID", "device", "email", "password"),
        ("PUT", "/v1/oauth"): ("refreshToken",),
        ("PUT", "/v1/user"): ("email",),
    }
    for (method, path), fields in fields_of.items():
        for case, response in await send_bodies(api, method, path, fields, **token_headers()):
            await expect_financelime(response, f"{method} {path} {case}")
    for rid in ["", " ", "a" * 129, "é", "a b", CRLF.replace("\r\n", "")]:
        response = await api.post(
            "/v1/oauth", json=login_body, headers={**token_headers(), "request-id": rid}
        )
        await expect_financelime(response, f"request-id {rid!r}")
    response = await api.post("/v1/oauth", json=login_body, headers={"User-Agent": "x"})
    await expect_financelime(response, "no request-id")
    for case, forged in _forged_tokens(tokens["accessToken"], clock).items():
        response = await api.get("/v1/sessions", headers=token_headers(forged))
        assert await expect_financelime(response, case) == "401 Unauthorized", case
    for refresh in ["", "a" * 43, "=" * 43, SQL, "a" * 100_000, tokens["accessToken"]]:
        response = await api.put("/v1/oauth", json={"refreshToken": refresh}, headers=token_headers())
        await expect_financelime(response, f"refresh {refresh[:20]}")
    # The real session survived all of it, and nothing was signed up.
    response = await api.put(
        "/v1/oauth", json={"refreshToken": tokens["refreshToken"]}, headers=token_headers()
    )
    assert response.status == 200, await response.text()
    assert await count(services, "users") == before
    assert orjson.loads(await (await api.get("/v1/version", headers=token_headers())).read())["number"]
