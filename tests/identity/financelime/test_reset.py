"""Password reset of the token API: the request (``PUT /v1/user``, seed 001 ``POST /v1/user/password``)
and the mailed page (``GET /p/{key}``) that mails a new password and ends every session."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from identity.signups import key_digest
from tests.authz.helpers import eventually
from tests.identity.financelime.helpers import (
    PATH_SETS,
    SEED_000,
    Api,
    error_of,
    headers,
    link_in,
    password_in,
)
from tests.identity.helpers import login as cookie_login

PROTECTED = "/api/v2/auth/api/v2/peatio/account/balances"


# Behaviour decided before storage matters: one backend is enough (the journey runs on both).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
@pytest.mark.parametrize("slash", [False, True], ids=["bare", "slash"])
@pytest.mark.parametrize("paths", sorted(PATH_SETS))
async def test_reset_mails_a_link_then_a_new_password(
    api_client: Any, inbox: Any, make_user: Any, paths: str, slash: bool
) -> None:
    account = await make_user()
    api = Api(api_client, PATH_SETS[paths], slash=slash)
    response = await api.call("reset", {"email": account.user.email})
    assert response.status == 204
    (mail,) = await inbox.wait_for(account.user.email, "reset_link")
    assert "81.2.69.10" in mail.get_body(("plain",)).get_content()  # the requester's address
    page = await api_client.get(link_in(mail, "p"))
    assert page.status == 200
    assert "Password reset" in await page.text()
    (new,) = await inbox.wait_for(account.user.email, "new_password")
    password = password_in(new)
    failed = await api.call("login", {"email": account.user.email, "password": account.password})
    assert await error_of(failed) == (404, "USER_NOT_FOUND")
    assert (await api.login(account.user.email, password))["accessToken"]


async def test_a_reset_ends_every_session(api_client: Any, inbox: Any, make_user: Any) -> None:
    account = await make_user()
    api = Api(api_client, SEED_000)
    grant = await api.login(account.user.email, account.password)
    cookie, _ = await cookie_login(api_client, account)
    await api.call("reset", {"email": account.user.email})
    (mail,) = await inbox.wait_for(account.user.email, "reset_link")
    assert (await api_client.get(link_in(mail, "p"))).status == 200
    denied = await api_client.get(PROTECTED, headers=headers(grant["accessToken"]))
    assert await denied.json() == {"errors": ["authz.invalid_session"]}
    refreshed = await api.call("refresh", {"refreshToken": grant["refreshToken"]})
    assert await error_of(refreshed) == (404, "USER_NOT_FOUND")
    browser = await api_client.get(
        PROTECTED,
        headers={"Cookie": f"_barong_session={cookie}", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Test"},
    )
    assert browser.status == 401


async def test_a_reset_link_works_once_and_only_the_newest(
    api_client: Any, inbox: Any, make_user: Any
) -> None:
    account = await make_user()
    api = Api(api_client, SEED_000)
    await api.call("reset", {"email": account.user.email})
    (older,) = await inbox.wait_for(account.user.email, "reset_link")
    await api.call("reset", {"email": account.user.email})
    newer = (await inbox.wait_for(account.user.email, "reset_link", count=2))[1]
    assert (await api_client.get(link_in(older, "p"))).status == 404
    assert (await api_client.get(link_in(newer, "p"))).status == 200
    assert (await api_client.get(link_in(newer, "p"))).status == 404


async def test_a_reset_link_lives_as_long_as_configured(
    api_client: Any, inbox: Any, make_user: Any, services: Any, settings: Any
) -> None:
    account = await make_user()
    await Api(api_client, SEED_000).call("reset", {"email": account.user.email})
    (mail,) = await inbox.wait_for(account.user.email, "reset_link")
    key = link_in(mail, "p").split("/")[2].split("?")[0]
    stored = f"{settings.redis_namespace}:reset_link:{key_digest(key)}"
    assert 0 < await services.redis.ttl(stored) <= settings.reset_token_expire_time  # Redis forgets it then
    assert "60 minutes" in mail.get_body(("plain",)).get_content()
    await services.redis.delete(stored)  # as Redis does when the TTL runs out
    assert (await api_client.get(link_in(mail, "p"))).status == 404


async def test_an_unknown_email_is_404(api_client: Any) -> None:
    response = await Api(api_client, SEED_000).call("reset", {"email": "nobody@example.com"})
    assert await error_of(response) == (404, "USER_NOT_FOUND")


@SQLITE_ONLY
@pytest.mark.parametrize("body", [{}, {"email": "bad"}, {"email": ["a@example.com"]}, {"email": "a" * 300}])
async def test_bad_reset_requests_are_400(api_client: Any, body: Any) -> None:
    response = await api_client.put("/v1/user", json=body, headers=headers())
    assert await error_of(response) == (400, "BAD_PARAMETERS")


async def test_the_reset_page_needs_a_request_id_and_a_valid_key(api_client: Any) -> None:
    assert (await api_client.get("/p/abcefghijkmnopqr")).status == 400
    assert (await api_client.get("/p/abcefghijkmnopqr?rid=abcda12b12c12d12")).status == 404
    assert (await api_client.get("/p/nope?rid=abcda12b12c12d12")).status == 404


# --- throttling: the identity API's reset-mail limits, shared with it ---------------------------------------


async def queue_drained(services: Any) -> None:
    """Wait until every mail the requests queued has been delivered."""
    messages = f"{services.settings.redis_namespace}:mail:messages"
    assert await eventually(lambda: services.redis.hlen(messages), lambda left: left == 0, within=10) == 0


async def assert_throttled(response: Any) -> None:
    assert await error_of(response) == (429, "TOO_MANY_REQUESTS")
    assert 1 <= int(response.headers["Retry-After"]) <= 3600


@SQLITE_ONLY
async def test_a_flood_of_reset_requests_mails_only_the_limit(
    api_client: Any, inbox: Any, make_user: Any, services: Any
) -> None:
    account = await make_user()
    api = Api(api_client, SEED_000)
    limit = 5  # AUTHZ_MAIL_MAX_REQUESTS_ADDRESS's default
    responses = await asyncio.gather(
        *(
            api.call("reset", {"email": account.user.email}, **{"X-Forwarded-For": f"81.2.69.{n + 1}"})
            for n in range(25)
        )
    )
    assert sorted(response.status for response in responses) == [204] * limit + [429] * (25 - limit)
    for response in responses:
        if response.status == 429:
            await assert_throttled(response)
    await queue_drained(services)
    assert len(inbox.to(account.user.email, "reset_link")) == limit


@SQLITE_ONLY
async def test_requests_for_an_unknown_email_count_too(api_client: Any) -> None:
    api = Api(api_client, SEED_000)
    for _ in range(5):
        response = await api.call("reset", {"email": "nobody@example.com"})
        assert await error_of(response) == (404, "USER_NOT_FOUND")
    await assert_throttled(await api.call("reset", {"email": "nobody@example.com"}))


@SQLITE_ONLY
async def test_the_reset_limit_holds_across_both_apis(
    api_client: Any, inbox: Any, make_user: Any, services: Any
) -> None:
    account = await make_user()
    api = Api(api_client, SEED_000)
    barong = "/api/v2/barong/identity/users/password/generate_code"
    for n in range(5):
        if n % 2:
            assert (await api.call("reset", {"email": account.user.email})).status == 204
        else:
            response = await api_client.post(barong, json={"email": account.user.email}, headers=headers())
            assert response.status == 201
    await assert_throttled(await api.call("reset", {"email": account.user.email}))
    refused = await api_client.post(barong, json={"email": account.user.email}, headers=headers())
    assert refused.status == 429
    assert await refused.json() == {"errors": ["identity.user.too_many_requests"]}
    await queue_drained(services)
    assert len(inbox.to(account.user.email, "reset_link")) == 2
    assert len(inbox.to(account.user.email, "password_reset")) == 3
