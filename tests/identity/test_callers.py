"""The upstream JWT on the service's own APIs (identity/callers.py): it opens only what the permission table
lets its user's role do, for the request it comes with, and only while its session or API key lives.

The decision endpoint mints the token for one request; a caller who asks it directly holds the token and can
replay it on any other of our endpoints.  These tests do exactly that.
"""

from __future__ import annotations

from typing import Any

import pytest

from authz.http.state import STATE
from identity.models import Permission
from identity.sessions import session_hash
from tests.authz.helpers import bearer_claims, sign
from tests.identity.conftest import Inbox, token_in
from tests.identity.financelime.helpers import DEVICE
from tests.identity.financelime.helpers import headers as token_api_headers
from tests.identity.helpers import browser, cheap_argon2, login, with_cookie

ADMIN = "/api/v2/barong/admin"
ADMIN_ALIAS = "/api/v2/admin"
ME = "/api/v2/barong/resource/users/me"
INVALID_PERMISSION = ["authz.invalid_permission"]
INVALID_TOKEN = ["jwt.decode_and_verify"]


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


async def minted(client: Any, cookie: str, path: str) -> dict[str, str]:
    """The headers a gateway forwards once the decision endpoint allowed ``GET path`` with ``cookie``."""
    response = await client.get(f"/api/v2/auth{path}", headers=with_cookie(cookie))
    assert response.status == 200, await response.text()
    return browser(Authorization=response.headers["Authorization"])


async def signed_in(client: Any, account: Any, path: str = ME) -> tuple[str, dict[str, str]]:
    """A new cookie session of ``account`` and the upstream JWT minted for it on ``GET path``."""
    cookie, _ = await login(client, account)
    return cookie, await minted(client, cookie, path)


async def errors_of(response: Any, status: int) -> list[str]:
    assert response.status == status, await response.text()
    return (await response.json())["errors"]  # type: ignore[no-any-return]


# --- (a) the permission table, for the request itself ----------------------------------------------------


async def test_a_support_jwt_minted_to_read_users_does_not_change_a_role(
    api: Any, make_user: Any, services: Any
) -> None:
    """The issue's replay: support may GET the admin users (and update them), not POST users/role."""
    member = (await make_user()).user
    _, support = await signed_in(api, await make_user(role="support"), f"{ADMIN}/users")
    assert (await api.get(f"{ADMIN}/users", headers=support)).status == 200  # what it was minted for
    for prefix in (ADMIN, ADMIN_ALIAS):
        body = {"uid": member.uid, "role": "admin"}
        replayed = await api.post(f"{prefix}/users/role", json=body, headers=support)
        assert await errors_of(replayed, 401) == INVALID_PERMISSION
    assert (await services.users.get_by_uid(member.uid)).role == "member"


async def test_the_tables_drop_of_the_permissions_api_holds_for_an_admins_jwt_under_both_spellings(
    api: Any, make_user: Any, services: Any
) -> None:
    cookie, admin = await signed_in(api, await make_user(role="admin"))
    before = await services.permissions.list_all()
    body = {"role": "member", "verb": "GET", "path": "api/v2/new", "action": "accept"}
    for prefix in (ADMIN, ADMIN_ALIAS):
        # The decision endpoint refuses these requests; the admin API says the same to a replayed token.
        gateway = await api.get(f"/api/v2/auth{prefix}/permissions", headers=with_cookie(cookie))
        assert await errors_of(gateway, 401) == INVALID_PERMISSION
        for response in (
            await api.get(f"{prefix}/permissions", headers=admin),
            await api.post(f"{prefix}/permissions", json=body, headers=admin),
        ):
            assert await errors_of(response, 401) == INVALID_PERMISSION
    assert await services.permissions.list_all() == before
    assert (await api.get(f"{ADMIN}/users", headers=admin)).status == 200  # the rest stays open to admins


async def test_a_members_jwt_opens_no_admin_endpoint(api: Any, make_user: Any) -> None:
    _, member = await signed_in(api, await make_user())
    requests = (("GET", "/users"), ("GET", "/abilities"), ("POST", "/users/role"), ("GET", "/levels"))
    for method, path in requests:
        for prefix in (ADMIN, ADMIN_ALIAS):
            response = await api.request(method, f"{prefix}{path}", json={"page": "x"}, headers=member)
            assert await errors_of(response, 401) == INVALID_PERMISSION, (method, prefix, path)
    assert (await api.get(ME, headers=member)).status == 200


async def test_a_change_of_the_table_applies_to_the_own_apis_at_once(
    api: Any, make_user: Any, services: Any
) -> None:
    _, member = await signed_in(api, await make_user())
    assert (await api.get(ME, headers=member)).status == 200
    drop = Permission("member", "GET", "api/v2/resource/users/me", "DROP")  # the alias spelling
    await services.permissions.add_many([drop])
    await api.app[STATE].policy.reload()
    assert await errors_of(await api.get(ME, headers=member), 401) == INVALID_PERMISSION
    assert (await api.get("/api/v2/barong/resource/users/activity/all", headers=member)).status == 200


# --- (b) the session or key the token was minted for ------------------------------------------------------


async def test_a_cookie_sessions_jwt_names_its_session_and_dies_with_its_logout(
    api: Any, make_user: Any
) -> None:
    cookie, token = await signed_in(api, await make_user())
    assert (await api.get(ME, headers=token)).status == 200
    logout = await api.delete("/api/v2/barong/identity/sessions", headers=with_cookie(cookie))
    assert logout.status == 200, await logout.text()
    assert await errors_of(await api.get(ME, headers=token), 401) == INVALID_TOKEN
    assert (await bearer_claims(api, token["Authorization"]))["sid"] == session_hash(cookie)


async def test_a_password_reset_ends_the_jwts_of_every_session(
    make_client: Any, make_user: Any, inbox: Inbox
) -> None:
    client = await make_client(
        smtp_url=f"smtp://127.0.0.1:{inbox.port}", smtp_tls="none", mail_retry_delay=0.1
    )
    account = await make_user()
    _, token = await signed_in(client, account)
    assert (await client.get(ME, headers=token)).status == 200
    users = "/api/v2/barong/identity/users/password"
    asked = await client.post(f"{users}/generate_code", json={"email": account.user.email}, headers=browser())
    assert asked.status == 201, await asked.text()
    [mail] = await inbox.wait_for(account.user.email, "password_reset")
    password = "Another-Secret-77"
    reset = token_in(mail, "reset_token")
    body = {"reset_password_token": reset, "password": password, "confirm_password": password}
    done = await client.post(f"{users}/confirm_code", json=body, headers=browser())
    assert done.status == 201, await done.text()
    assert await errors_of(await client.get(ME, headers=token), 401) == INVALID_TOKEN


async def test_a_password_change_ends_the_jwts_of_the_other_sessions_only(api: Any, make_user: Any) -> None:
    account = await make_user()
    _, this = await signed_in(api, account)
    _, other = await signed_in(api, account)
    password = "Another-Secret-77"
    body = {"old_password": account.password, "new_password": password, "confirm_password": password}
    # No cookie with the request: the token's sid says which session is the caller's.
    changed = await api.put("/api/v2/barong/resource/users/password", json=body, headers=this)
    assert changed.status == 201, await changed.text()
    assert (await api.get(ME, headers=this)).status == 200
    assert await errors_of(await api.get(ME, headers=other), 401) == INVALID_TOKEN


async def test_a_ban_ends_the_users_jwts(api: Any, make_user: Any) -> None:
    account = await make_user()
    _, token = await signed_in(api, account)
    _, superadmin = await signed_in(api, await make_user(role="superadmin"), f"{ADMIN}/users")
    body = {"uid": account.user.uid, "state": "banned"}
    assert (await api.post(f"{ADMIN}/users/update", json=body, headers=superadmin)).status == 201
    assert await errors_of(await api.get(ME, headers=token), 401) == INVALID_TOKEN


async def test_an_api_keys_jwt_names_its_key_and_dies_when_the_key_is_turned_off(
    api: Any, make_user: Any, services: Any, clock: Any
) -> None:
    account = await make_user(otp=True)  # API keys sign in users with 2FA only
    key = await services.api_keys.create(holder_id=account.user.id)

    async def minted_for_key() -> dict[str, str]:
        clock.advance(0.01)  # a nonce of its own
        nonce = str(int(clock.now * 1000))
        signature = sign(key.secret, "HS256", nonce, key.kid)
        signed = {"X-Auth-Apikey": key.kid, "X-Auth-Nonce": nonce, "X-Auth-Signature": signature}
        response = await api.get(f"/api/v2/auth{ME}", headers=browser(**signed))
        assert response.status == 200, await response.text()
        return browser(Authorization=response.headers["Authorization"])

    token = await minted_for_key()
    assert (await api.get(ME, headers=token)).status == 200
    assert await services.api_keys.set_state(key.kid, "inactive")
    assert await errors_of(await api.get(ME, headers=token), 401) == INVALID_TOKEN
    claims = await bearer_claims(api, token["Authorization"])
    assert claims["api_kid"] == key.kid and "sid" not in claims
    assert await services.api_keys.set_state(key.kid, "active")
    token = await minted_for_key()
    assert await services.api_keys.delete(key.kid)
    assert await errors_of(await api.get(ME, headers=token), 401) == INVALID_TOKEN


# --- the token API ----------------------------------------------------------------------------------------


async def test_the_token_apis_upstream_jwt_dies_with_its_session(api: Any, make_user: Any) -> None:
    account = await make_user()
    body = {"clientID": "PWA", "device": DEVICE, "email": account.user.email, "password": account.password}
    granted = await api.post("/v1/oauth", json=body, headers=token_api_headers())
    assert granted.status == 200, await granted.text()
    grant = await granted.json()
    decided = await api.get("/api/v2/auth/v1/sessions", headers=token_api_headers(grant["accessToken"]))
    assert decided.status == 200, await decided.text()
    upstream = {**token_api_headers(), "Authorization": decided.headers["Authorization"]}
    assert (await bearer_claims(api, upstream["Authorization"]))["sid"] == grant["sessionID"]  # as before
    assert (await api.get("/v1/sessions", headers=upstream)).status == 200

    own = token_api_headers(grant["accessToken"])
    revoke = await api.delete("/v1/session", json={"sessionID": ""}, headers=own)
    assert revoke.status == 204, await revoke.text()
    refused = await api.get("/v1/sessions", headers={**upstream, "request-id": "again"})
    assert (refused.status, await refused.json()) == (401, {"code": 401, "message": "401 Unauthorized"})


async def test_the_token_api_holds_an_upstream_jwt_to_the_table(api: Any, make_user: Any) -> None:
    """``sa_maker`` (the service accounts' role) may use the resource API but has no ``v1/session`` rows."""
    _, token = await signed_in(api, await make_user(role="sa_maker"))
    assert (await api.get(ME, headers=token)).status == 200
    refused = await api.get("/v1/sessions", headers={**token, "request-id": "r1"})
    assert (refused.status, await refused.json()) == (401, {"code": 401, "message": "401 Unauthorized"})
