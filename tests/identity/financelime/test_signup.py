"""Sign-up with an invite code (``POST /v1/user``, seed 001 ``POST /v1/user/signup``) and the mailed
confirmation page (``GET /u/{key}``), against real SQL, Redis and SMTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from identity.db import invite_codes, signups
from identity.invite_codes import SqlInviteCodeRepository
from tests.identity.financelime.helpers import (
    PATH_SETS,
    SEED_000,
    Api,
    error_of,
    headers,
    link_in,
    password_in,
)

# Behaviour decided before storage matters: one backend is enough (the journey runs on both).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def form(email: str, invite: str = "", language: str = "en") -> dict[str, str]:
    return {"email": email, "inviteCode": invite, "language": language}


@SQLITE_ONLY
@pytest.mark.parametrize("slash", [False, True], ids=["bare", "slash"])
@pytest.mark.parametrize("paths", sorted(PATH_SETS))
async def test_sign_up_answers_204_and_mails_the_link(
    api_client: Any, inbox: Any, invite: str, paths: str, slash: bool
) -> None:
    api = Api(api_client, PATH_SETS[paths], slash=slash)
    response = await api.call("sign_up", form("new@example.com", invite))
    assert response.status == 204
    assert await response.read() == b""
    (mail,) = await inbox.wait_for("new@example.com", "signup_confirmation")
    assert link_in(mail, "u").startswith("/u/")


async def test_confirmation_creates_a_verified_account_and_mails_its_password(
    api_client: Any, inbox: Any, invite: str, services: Any
) -> None:
    api = Api(api_client, SEED_000)
    await api.call("sign_up", form("ann@example.com", invite, "ru"))
    (mail,) = await inbox.wait_for("ann@example.com", "signup_confirmation")
    assert "Подтвердите" in mail["Subject"]  # the mail speaks the language asked for
    page = await api_client.get(link_in(mail, "u"))
    assert page.status == 200
    assert "Адрес подтверждён" in await page.text()
    (welcome,) = await inbox.wait_for("ann@example.com", "account_password")
    user = await services.users.get_by_email("ann@example.com")
    assert user.state == "active"  # e-mail verified: policies/barong.yml activates the account
    assert user.level == 1
    assert '"language":"ru"' in user.data
    grant = await api.login("ann@example.com", password_in(welcome))
    assert grant["sessionID"]
    code = await SqlInviteCodeRepository(services.engine).get(invite)
    assert (code.issued, code.pending) == (1, 0)


async def test_a_confirmation_link_works_once(api_client: Any, inbox: Any, invite: str) -> None:
    await Api(api_client, SEED_000).call("sign_up", form("once@example.com", invite))
    link = link_in((await inbox.wait_for("once@example.com", "signup_confirmation"))[0], "u")
    assert (await api_client.get(link)).status == 200
    again = await api_client.get(link)
    assert again.status == 404
    assert again.content_type == "text/html"
    assert "Link not valid" in await again.text()


@SQLITE_ONLY
@pytest.mark.parametrize("key", ["abcdefghijkmnopq", "short", "ABCDEFGHIJKLMNOP", "aaaaaaaaaaaaaaaaa"])
async def test_unknown_or_malformed_keys_are_404(api_client: Any, key: str) -> None:
    response = await api_client.get(f"/u/{key}?rid=abcda12b12c12d12")
    assert response.status == 404
    json = await api_client.get(f"/u/{key}?rid=abcda12b12c12d12", headers={"Accept": "application/json"})
    assert await error_of(json) == (404, "404 Not Found")


async def test_the_page_needs_a_request_id(api_client: Any, inbox: Any, invite: str) -> None:
    await Api(api_client, SEED_000).call("sign_up", form("rid@example.com", invite))
    link = link_in((await inbox.wait_for("rid@example.com", "signup_confirmation"))[0], "u")
    bare = link.split("?")[0]
    assert (await api_client.get(bare)).status == 400
    # The request id may come as the header too; the key was not used by the refused attempt.
    assert (await api_client.get(bare, headers={"request-id": "abcda12b12c12d12"})).status == 200


async def test_an_expired_confirmation_is_404_and_frees_the_address(
    api_client: Any, inbox: Any, invite: str, clock: Any
) -> None:
    api = Api(api_client, SEED_000)
    await api.call("sign_up", form("late@example.com", invite))
    link = link_in((await inbox.wait_for("late@example.com", "signup_confirmation"))[0], "u")
    clock.advance(86_400 + 1)
    assert (await api_client.get(link)).status == 404
    assert (await api.call("sign_up", form("late@example.com", invite))).status == 204


async def test_an_existing_account_or_pending_sign_up_is_409(
    api_client: Any, invite: str, make_user: Any
) -> None:
    api = Api(api_client, SEED_000)
    account = await make_user()
    taken = await api.call("sign_up", form(account.user.email, invite))
    assert await error_of(taken) == (409, "USER_ALREADY_EXIST")
    assert (await api.call("sign_up", form("twice@example.com", invite))).status == 204
    again = await api.call("sign_up", form("twice@example.com", invite))
    assert await error_of(again) == (409, "USER_ALREADY_EXIST")


async def test_an_unknown_or_expired_invite_code_is_404(api_client: Any, services: Any, clock: Any) -> None:
    api = Api(api_client, SEED_000)
    unknown = await api.call("sign_up", form("a@example.com", "no-such-code"))
    assert await error_of(unknown) == (404, "INVITE_NOT_FOUND")
    soon = datetime.now(UTC) + timedelta(seconds=60)
    code = await SqlInviteCodeRepository(services.engine).create(max_uses=3, expires_at=soon)
    async with services.engine.begin() as conn:  # expired since (the repository refuses a past expiry)
        await conn.execute(
            invite_codes.update()
            .where(invite_codes.c.id == code.id)
            .values(expires_at=soon - timedelta(days=1))
        )
    expired = await api.call("sign_up", form("b@example.com", code.code))
    assert await error_of(expired) == (404, "INVITE_NOT_FOUND")


async def test_pending_sign_ups_hold_an_invite_codes_uses(api_client: Any, services: Any) -> None:
    api = Api(api_client, SEED_000)
    code = (await SqlInviteCodeRepository(services.engine).create(max_uses=1)).code
    assert (await api.call("sign_up", form("first@example.com", code))).status == 204
    ended = await api.call("sign_up", form("second@example.com", code))
    assert await error_of(ended) == (409, "INVITE_HAS_ENDED")
    async with services.engine.connect() as conn:
        assert (await conn.execute(select(signups.c.email))).scalars().all() == ["first@example.com"]


async def test_invite_codes_may_be_optional(
    make_client: Any, services: Any, inbox: Any, settings: Any
) -> None:
    client = await make_client(
        invite_code_required=False, smtp_url=f"smtp://127.0.0.1:{inbox.port}", smtp_tls="none"
    )
    api = Api(client, SEED_000)
    assert (await api.call("sign_up", form("free@example.com"))).status == 204
    code = (await SqlInviteCodeRepository(services.engine).create(max_uses=1)).code
    assert (await api.call("sign_up", form("coded@example.com", code))).status == 204
    # Used up: without the requirement the sign-up goes on, holding no use of the code.
    assert (await api.call("sign_up", form("later@example.com", code))).status == 204
    unknown = await api.call("sign_up", form("bad@example.com", "no-such-code"))
    assert await error_of(unknown) == (404, "INVITE_NOT_FOUND")


@SQLITE_ONLY
async def test_sign_ups_from_one_ip_are_throttled_and_a_refused_one_holds_nothing(
    api_client: Any, services: Any, inbox: Any
) -> None:
    per_ip = 20  # AUTHZ_MAIL_MAX_REQUESTS_IP's default
    invite = (await SqlInviteCodeRepository(services.engine).create(max_uses=per_ip + 5)).code
    api = Api(api_client, SEED_000)
    addresses = [f"rotated{n}@example.com" for n in range(per_ip)]
    for address in addresses:
        assert (await api.call("sign_up", form(address, invite))).status == 204
    refused = await api.call("sign_up", form("refused@example.com", invite))
    assert await error_of(refused) == (429, "TOO_MANY_REQUESTS")
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    elsewhere = {"X-Forwarded-For": "1.0.0.7"}
    assert (await api.call("sign_up", form("elsewhere@example.com", invite), **elsewhere)).status == 204
    async with services.engine.connect() as conn:
        pending = (await conn.execute(select(signups.c.email))).scalars().all()
    assert sorted(pending) == sorted([*addresses, "elsewhere@example.com"])
    for address in [*addresses, "elsewhere@example.com"]:
        await inbox.wait_for(address, "signup_confirmation")
    assert inbox.to("refused@example.com") == []


BAD_SIGN_UPS = [
    pytest.param({"inviteCode": "x", "language": "en"}, id="no-email"),
    pytest.param({"email": "not-an-address", "language": "en"}, id="bad-email"),
    pytest.param({"email": "a@b", "language": "en"}, id="short-email"),
    pytest.param({"email": "x" * 250 + "@example.com", "language": "en"}, id="long-email"),
    pytest.param({"email": 42, "language": "en"}, id="email-number"),
    pytest.param({"email": "c@example.com", "language": "en"}, id="no-invite"),
    pytest.param({"email": "c@example.com", "inviteCode": "a b", "language": "en"}, id="bad-invite"),
    pytest.param({"email": "c@example.com", "inviteCode": "x" * 17, "language": "en"}, id="long-invite"),
    pytest.param({"email": "c@example.com", "inviteCode": "validcode"}, id="no-language"),
    pytest.param({"email": "c@example.com", "inviteCode": "validcode", "language": "nn"}, id="bad-language"),
    pytest.param(["email"], id="array"),
    pytest.param("text", id="string"),
]


@SQLITE_ONLY
@pytest.mark.parametrize("body", BAD_SIGN_UPS)
async def test_bad_sign_ups_are_400(api_client: Any, body: Any) -> None:
    response = await api_client.post("/v1/user", json=body, headers=headers())
    assert await error_of(response) == (400, "BAD_PARAMETERS")


async def test_bodies_are_read_as_go_reads_them(api_client: Any, inbox: Any, invite: str) -> None:
    # Names match whatever their case; unknown fields are ignored; the original's exact content type too.
    body = b'{"EMAIL":"go@example.com","invitecode":"%s","Language":"EN","extra":1}' % invite.encode()
    response = await api_client.post(
        "/v1/user", data=body, headers={**headers(), "Content-Type": "application/json;charset=utf-8"}
    )
    assert response.status == 204, await response.text()
    await inbox.wait_for("go@example.com", "signup_confirmation")


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{not json"),
        ("application/json", b""),
        ("application/json", b"\xff\xfe"),
        ("application/x-www-form-urlencoded", b"email=a%40example.com"),
    ],
)
async def test_unreadable_bodies_are_400(api_client: Any, content_type: str, body: bytes) -> None:
    response = await api_client.post(
        "/v1/user", data=body, headers={**headers(), "Content-Type": content_type}
    )
    assert await error_of(response) == (400, "BAD_PARAMETERS")


@SQLITE_ONLY
@pytest.mark.parametrize("request_id", [None, "", "has space", "x" * 129])
async def test_a_request_id_is_required(api_client: Any, invite: str, request_id: str | None) -> None:
    sent = {k: v for k, v in headers().items() if k != "request-id"}
    if request_id is not None:
        sent["request-id"] = request_id
    response = await api_client.post("/v1/user", json=form("r@example.com", invite), headers=sent)
    assert await error_of(response) == (400, "BAD_PARAMETERS")
