"""Sign-up, e-mail confirmation, password reset and whitelink access over the real app
(barong-behavior.md §4.1–4.5, §7.3, with decisions.md), mail read from a real SMTP server.

Flows that write SQL run on SQLite and PostgreSQL; parameter checks run on SQLite only.
"""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest

from identity.tokens import AccountTokens
from identity.whitelinks import RedisWhitelinkTokens
from tests.authz.helpers import eventually
from tests.identity.conftest import Inbox, token_in
from tests.identity.helpers import browser, cheap_argon2, decision_status

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
USERS = "/api/v2/barong/identity/users"
STRONG = "Correct-Horse-Battery-9"


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


def reset_issued_at(token: str) -> tuple[int, str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return claims["iat"], claims["jti"]


async def sign_up(client: Any, email: str, password: str = STRONG, **extra: Any) -> Any:
    return await client.post(USERS, json={"email": email, "password": password, **extra}, headers=browser())


async def first_user(client: Any, make_user: Any) -> None:
    """Somebody signed up before: later sign-ups are ordinary members."""
    await make_user(email="first@example.com")


async def test_first_sign_up_becomes_an_active_superadmin_without_mail(
    mail_client: Any, inbox: Inbox, services: Any
) -> None:
    response = await sign_up(mail_client, "founder@example.com", username="Founder1")
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["role"] == "superadmin" and body["state"] == "active" and body["level"] == 1
    assert body["username"] == "founder1"
    assert [(label["key"], label["value"], label["scope"]) for label in body["labels"]] == [
        ("email", "verified", "private")
    ]
    assert len(body["csrf_token"]) == 20
    cookie = response.cookies["_barong_session"].value
    assert (await decision_status(mail_client, cookie))[0] == 200
    activities = await services.activities.list(user_id=(await services.users.get_by_uid(body["uid"])).id)
    assert [(a.topic, a.action, a.result) for a in activities] == [("account", "signup", "succeed")]
    assert inbox.messages == []


async def test_sign_up_mails_a_confirmation_link_that_activates_the_account(
    mail_client: Any, inbox: Inbox, make_user: Any, services: Any
) -> None:
    await first_user(mail_client, make_user)
    response = await sign_up(mail_client, "newbie@example.com", data='{"language":"en"}')
    assert response.status == 201, await response.text()
    body = await response.json()
    assert (body["role"], body["state"], body["level"], body["labels"]) == ("member", "pending", 0, [])
    [mail] = await inbox.wait_for("newbie@example.com", "email_confirmation")
    token = token_in(mail, "confirmation_token")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["uid"], claims["iss"]) == ("confirmation", body["uid"], "barong")

    confirmed = await mail_client.post(
        f"{USERS}/email/confirm_code", json={"token": token}, headers=browser()
    )
    assert confirmed.status == 201, await confirmed.text()
    user = await confirmed.json()
    assert (user["state"], user["level"]) == ("active", 1)
    assert "csrf_token" in user
    assert (await decision_status(mail_client, confirmed.cookies["_barong_session"].value))[0] == 200

    again = await mail_client.post(f"{USERS}/email/confirm_code", json={"token": token}, headers=browser())
    assert again.status == 422
    assert await again.json() == {"errors": ["identity.user.active_or_doesnt_exist"]}


async def test_a_confirmation_token_is_used_once_even_by_concurrent_requests(
    mail_client: Any, inbox: Inbox, make_user: Any
) -> None:
    import asyncio

    await first_user(mail_client, make_user)
    await sign_up(mail_client, "racer@example.com")
    token = token_in(
        (await inbox.wait_for("racer@example.com", "email_confirmation"))[0], "confirmation_token"
    )
    responses = await asyncio.gather(
        *(
            mail_client.post(f"{USERS}/email/confirm_code", json={"token": token}, headers=browser())
            for _ in range(4)
        )
    )
    assert sorted(r.status for r in responses) == [201, 422, 422, 422]


@SQLITE_ONLY
async def test_generate_code_mails_pending_accounts_only_and_hides_which_exist(
    mail_client: Any, inbox: Inbox, make_user: Any
) -> None:
    pending = await make_user(email="pending@example.com", state="pending")
    await make_user(email="active@example.com", state="active")
    for address in ("pending@example.com", "active@example.com", "nobody@example.com"):
        response = await mail_client.post(
            f"{USERS}/email/generate_code", json={"email": address}, headers=browser()
        )
        assert response.status == 201
    [mail] = await inbox.wait_for("pending@example.com", "email_confirmation")
    claims = jwt.decode(token_in(mail, "confirmation_token"), options={"verify_signature": False})
    assert claims["uid"] == pending.user.uid
    assert inbox.to("active@example.com") == [] and inbox.to("nobody@example.com") == []


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("token", "key"),
    [
        ("not-a-jwt", "jwt.decode_and_verify.segments"),
        ("a.b.c", "jwt.decode_and_verify.segments"),
    ],
)
async def test_confirm_code_rejects_malformed_tokens(mail_client: Any, token: str, key: str) -> None:
    response = await mail_client.post(f"{USERS}/email/confirm_code", json={"token": token}, headers=browser())
    assert response.status == 422
    assert await response.json() == {"errors": [key]}


@SQLITE_ONLY
async def test_confirm_code_rejects_expired_and_foreign_tokens(
    mail_client: Any, make_user: Any, clock: Any, services: Any, settings: Any
) -> None:
    from authz.keys import load_or_create

    account = await make_user(state="pending")
    key = load_or_create(settings.jwt_private_key, settings.data_dir)
    tokens = AccountTokens(
        services.redis, namespace=settings.redis_namespace, signer=key,
        public_keys={key.kid: key.private_key.public_key()},
        issuer="barong", audience=["peatio", "barong"], email_ttl=60, reset_ttl=600, clock=clock,
    )  # fmt: skip
    expired = tokens.confirmation_token(account.user)
    reset = await tokens.reset_token(account.user)
    clock.advance(61)
    for token, error in (
        (expired, "jwt.decode_and_verify.expired"),
        (reset, "jwt.decode_and_verify.subject"),
    ):
        response = await mail_client.post(
            f"{USERS}/email/confirm_code", json={"token": token}, headers=browser()
        )
        assert await response.json() == {"errors": [error]}
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {**jwt.decode(expired, options={"verify_signature": False}), "exp": int(clock()) + 60},
        stranger,
        algorithm="RS256",
    )
    response = await mail_client.post(
        f"{USERS}/email/confirm_code", json={"token": forged}, headers=browser()
    )
    assert await response.json() == {"errors": ["jwt.decode_and_verify.failed"]}


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, ["identity.user.missing_email", "identity.user.missing_password"]),
        ({"email": " ", "password": STRONG}, ["identity.user.empty_email"]),
        ({"email": "bad", "password": STRONG}, ["email.invalid"]),
        ({"email": "a@example.com", "password": "short1A"}, ["password.requirements"]),
        ({"email": "a@example.com", "password": "Password1"}, ["password.weak"]),
        ({"email": "a@example.com", "password": STRONG, "username": "abc"}, ["username.too_short"]),
        ({"email": "a@example.com", "password": STRONG, "username": "a" * 13}, ["username.too_long"]),
        ({"email": "a@example.com", "password": STRONG, "username": "bad_name"}, ["username.invalid"]),
        ({"email": "a@example.com", "password": STRONG, "data": "{oops"}, ["data.invalid_format"]),
        ({"email": "a@example.com", "password": STRONG, "data": '"' + "x" * 1030 + '"'}, ["data.too_long"]),
        ({"email": "a@example.com", "password": STRONG, "refid": "XX0000000001"}, ["identity.user.invalid_referral_format"]),
        ({"email": "a@example.com", "password": STRONG, "refid": "ID0000000001"}, ["identity.user.referral_doesnt_exist"]),
        ({"email": "bad", "password": "weak", "username": "x"}, ["email.invalid", "username.too_short", "password.requirements"]),
    ],
)  # fmt: skip
async def test_sign_up_reports_every_invalid_field(
    mail_client: Any, body: dict[str, Any], errors: list[str]
) -> None:
    response = await mail_client.post(USERS, json=body, headers=browser())
    assert response.status == 422
    assert await response.json() == {"errors": errors}


async def test_sign_up_refuses_taken_email_and_username_and_records_a_referral(
    mail_client: Any, make_user: Any
) -> None:
    referrer = await make_user(email="ref@example.com")
    first = await sign_up(
        mail_client, "one@example.com", username="takenname", refid=referrer.user.uid.lower()
    )
    assert first.status == 201
    assert (await first.json())["referral_uid"] == referrer.user.uid
    clash = await sign_up(mail_client, "one@example.com", username="TakenName")
    assert clash.status == 422
    assert await clash.json() == {"errors": ["email.taken", "username.taken"]}


@SQLITE_ONLY
async def test_sign_up_accepts_a_form_body(mail_client: Any, make_user: Any) -> None:
    await first_user(mail_client, make_user)
    response = await mail_client.post(
        USERS, data={"email": "form@example.com", "password": STRONG}, headers=browser()
    )
    assert response.status == 201
    assert (await response.json())["email"] == "form@example.com"


@SQLITE_ONLY
async def test_sign_up_needs_the_member_role_in_the_permissions(mail_client: Any, services: Any) -> None:
    from identity.db import permissions

    async with services.engine.begin() as conn:
        await conn.execute(permissions.delete().where(permissions.c.role == "member"))
    response = await sign_up(mail_client, "x@example.com")
    assert await response.json() == {"errors": ["role.doesnt_exist"]}


async def test_password_reset_by_mail_sets_the_password_and_revokes_every_session(
    mail_client: Any, inbox: Inbox, make_user: Any, services: Any
) -> None:
    from tests.identity.helpers import login

    account = await make_user(email="forgetful@example.com")
    cookie, _ = await login(mail_client, account)
    assert (await decision_status(mail_client, cookie))[0] == 200
    response = await mail_client.post(
        f"{USERS}/password/generate_code", json={"email": account.user.email}, headers=browser()
    )
    assert response.status == 201
    [mail] = await inbox.wait_for(account.user.email, "password_reset")
    token = token_in(mail, "reset_token")
    new_password = "Another-Secret-77"
    mismatch = await mail_client.post(
        f"{USERS}/password/confirm_code",
        json={"reset_password_token": token, "password": new_password, "confirm_password": "other"},
        headers=browser(),
    )
    assert await mismatch.json() == {"errors": ["identity.user.passwords_doesnt_match"]}
    weak = await mail_client.post(
        f"{USERS}/password/confirm_code",
        json={"reset_password_token": token, "password": "Password1", "confirm_password": "Password1"},
        headers=browser(),
    )
    assert await weak.json() == {"errors": ["password.weak"]}
    done = await mail_client.post(
        f"{USERS}/password/confirm_code",
        json={"reset_password_token": token, "password": new_password, "confirm_password": new_password},
        headers=browser(),
    )
    assert done.status == 201, await done.text()
    assert (await decision_status(mail_client, cookie))[0] == 401
    reused = await mail_client.post(
        f"{USERS}/password/confirm_code",
        json={"reset_password_token": token, "password": new_password, "confirm_password": new_password},
        headers=browser(),
    )
    assert await reused.json() == {"errors": ["identity.user.utilized_token"]}
    account.password = new_password
    await login(mail_client, account)
    [changed] = await inbox.wait_for(account.user.email, "password_changed")
    assert "password" in changed["Subject"].lower()
    assert len(await inbox.wait_for(account.user.email, "new_login", count=2)) == 2
    activities = await services.activities.list(user_id=account.user.id)
    assert ("password", "request password reset", "succeed") in [
        (a.topic, a.action, a.result) for a in activities
    ]
    assert ("password", "password reset", "failed") in [(a.topic, a.action, a.result) for a in activities]
    assert ("password", "password reset", "succeed") in [(a.topic, a.action, a.result) for a in activities]


@SQLITE_ONLY
async def test_a_newer_reset_request_invalidates_the_older_link(
    mail_client: Any, inbox: Inbox, make_user: Any, clock: Any
) -> None:
    account = await make_user(email="twice@example.com")
    for _ in range(2):
        await mail_client.post(
            f"{USERS}/password/generate_code", json={"email": account.user.email}, headers=browser()
        )
        clock.advance(1)  # the tokens' iat tells which came first (the mails may arrive in any order)
    mails = await inbox.wait_for(account.user.email, "password_reset", count=2)
    older, newer = sorted((token_in(m, "reset_token") for m in mails), key=reset_issued_at)
    body = {"password": "Another-Secret-77", "confirm_password": "Another-Secret-77"}
    stale = await mail_client.post(
        f"{USERS}/password/confirm_code", json={**body, "reset_password_token": older}, headers=browser()
    )
    assert await stale.json() == {"errors": ["identity.user.utilized_token"]}
    fresh = await mail_client.post(
        f"{USERS}/password/confirm_code", json={**body, "reset_password_token": newer}, headers=browser()
    )
    assert fresh.status == 201


@SQLITE_ONLY
async def test_reset_for_an_unknown_email_answers_the_same_and_sends_nothing(
    mail_client: Any, inbox: Inbox
) -> None:
    response = await mail_client.post(
        f"{USERS}/password/generate_code", json={"email": "ghost@example.com"}, headers=browser()
    )
    assert response.status == 201
    missing = await mail_client.post(f"{USERS}/password/confirm_code", json={}, headers=browser())
    assert await missing.json() == {
        "errors": [
            "identity.user.missing_reset_password_token",
            "identity.user.missing_password",
            "identity.user.missing_confirm_password",
        ]
    }
    assert inbox.messages == []


async def test_whitelink_token_whitelists_the_callers_ip(
    mail_client: Any, services: Any, settings: Any
) -> None:
    maintenance_ip = "203.0.113.7"
    from identity.restrictions import validate_restriction

    await services.restrictions.add(validate_restriction("maintenance", "all", "all"))
    await services.changes.restrictions_changed()
    tokens = RedisWhitelinkTokens(services.redis, settings.redis_namespace)
    token = await tokens.create(3600)

    async def ping() -> int:
        response = await mail_client.get(
            "/api/v2/auth/api/v2/barong/public/ping", headers=browser(maintenance_ip)
        )
        return int(response.status)

    assert await eventually(ping, lambda status: status == 471) == 471
    response = await mail_client.post(
        f"{USERS}/access", json={"whitelink_token": token}, headers=browser(maintenance_ip)
    )
    assert response.status == 201, await response.text()
    assert await eventually(ping, lambda status: status == 200) == 200
    again = await mail_client.post(
        f"{USERS}/access", json={"whitelink_token": token}, headers=browser(maintenance_ip)
    )
    assert await again.json() == {"errors": ["value.taken"]}
    bad = await mail_client.post(
        f"{USERS}/access", json={"whitelink_token": "nope"}, headers=browser(maintenance_ip)
    )
    assert await bad.json() == {"errors": ["identity.user.access.invalid_token"]}
    missing = await mail_client.post(f"{USERS}/access", json={}, headers=browser(maintenance_ip))
    assert await missing.json() == {"errors": ["identity.user.missing_whitelink_token"]}


@SQLITE_ONLY
async def test_identity_aliases_answer_too(mail_client: Any, make_user: Any) -> None:
    await first_user(mail_client, make_user)
    response = await mail_client.post(
        "/api/v2/identity/users", json={"email": "alias@example.com", "password": STRONG}, headers=browser()
    )
    assert response.status == 201


@SQLITE_ONLY
async def test_first_sign_up_is_an_ordinary_member_when_the_setting_is_off(
    aiohttp_client: Any, mail_settings: Any, services: Any, inbox: Inbox
) -> None:
    from dataclasses import replace

    from authz.app import build_app

    settings = replace(mail_settings, first_registration_superadmin=False)
    client = await aiohttp_client(build_app(settings, settings.redis_url))
    response = await sign_up(client, "lonely@example.com")
    body = await response.json()
    assert (body["role"], body["state"], body["labels"]) == ("member", "pending", [])
    await inbox.wait_for("lonely@example.com", "email_confirmation")


async def test_of_concurrent_first_sign_ups_exactly_one_becomes_the_superadmin(
    mail_client: Any, services: Any
) -> None:
    emails = [f"founder{n}@example.com" for n in range(4)]
    responses = await asyncio.gather(*(sign_up(mail_client, email) for email in emails))
    assert [response.status for response in responses] == [201] * len(emails)
    roles = sorted([(await services.users.get_by_email(email)).role for email in emails])
    assert roles == ["member", "member", "member", "superadmin"]


# --- throttling of the mails asked for an address -----------------------------------------------------

RESET = f"{USERS}/password/generate_code"
CONFIRMATION = f"{USERS}/email/generate_code"
TOO_MANY = {"errors": ["identity.user.too_many_requests"]}
#: The default limits (``AUTHZ_MAIL_MAX_REQUESTS_ADDRESS``, ``AUTHZ_MAIL_MAX_REQUESTS_IP``, per hour).
PER_ADDRESS, PER_IP = 5, 20


@pytest.fixture
def make_mail_client(aiohttp_client: Any, mail_settings: Any, services: Any, clock: Any) -> Any:
    """``await make_mail_client(**settings)``: another instance of the app mailing to ``inbox``, with changed
    settings (each call builds one more instance on the same database, Redis namespace and clock)."""
    from dataclasses import replace

    from authz.app import build_app

    async def make(**changes: Any) -> Any:
        settings = replace(mail_settings, **changes)
        return await aiohttp_client(build_app(settings, settings.redis_url, clock=clock))

    return make


async def mails_sent(inbox: Inbox, services: Any, address: str, template: str) -> int:
    """How many mails of ``template`` reached ``address`` once the mail queue is empty (every mail that the
    requests queued has been delivered)."""
    messages = f"{services.settings.redis_namespace}:mail:messages"
    assert await eventually(lambda: services.redis.hlen(messages), lambda left: left == 0, within=10) == 0
    return len(inbox.to(address, template))


async def assert_mail_throttled(response: Any, window: int = 3600) -> None:
    assert response.status == 429, await response.text()
    assert await response.json() == TOO_MANY
    assert 1 <= int(response.headers["Retry-After"]) <= window


async def ask(client: Any, path: str, email: str, ip: str = "81.2.69.10") -> Any:
    return await client.post(path, json={"email": email}, headers=browser(ip))


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("path", "template", "state"),
    [(RESET, "password_reset", "active"), (CONFIRMATION, "email_confirmation", "pending")],
    ids=["reset", "confirmation"],
)
async def test_a_flood_of_mail_requests_for_one_address_mails_it_only_the_limit(
    mail_client: Any, inbox: Inbox, make_user: Any, services: Any, path: str, template: str, state: str
) -> None:
    account = await make_user(email=f"flooded-{template}@example.com", state=state)
    # From 25 addresses at once: only the address's limit applies.
    responses = await asyncio.gather(
        *(ask(mail_client, path, account.user.email, f"81.2.69.{n + 1}") for n in range(25))
    )
    statuses = sorted(response.status for response in responses)
    assert statuses == [201] * PER_ADDRESS + [429] * (25 - PER_ADDRESS)
    for response in responses:
        if response.status == 429:
            await assert_mail_throttled(response)
    assert await mails_sent(inbox, services, account.user.email, template) == PER_ADDRESS


@SQLITE_ONLY
async def test_reset_requests_for_an_unknown_address_are_counted_and_answered_alike(
    mail_client: Any, inbox: Inbox, make_user: Any, services: Any
) -> None:
    """The limit counts requests, not mails: an address without an account is refused after as many
    requests as one with an account, with the same answer (nothing tells the two apart)."""
    account = await make_user(email="known@example.com")

    async def answers(email: str) -> list[tuple[int, Any, bool]]:
        seen = []
        for _ in range(6):
            response = await ask(mail_client, RESET, email)
            seen.append((response.status, await response.json(), "Retry-After" in response.headers))
        return seen

    known, unknown = await answers(account.user.email), await answers("ghost@example.com")
    assert known == unknown == [(201, {}, False)] * PER_ADDRESS + [(429, TOO_MANY, True)]
    assert await mails_sent(inbox, services, account.user.email, "password_reset") == PER_ADDRESS
    assert inbox.to("ghost@example.com") == []


@SQLITE_ONLY
async def test_mail_requests_from_one_ip_are_throttled_whatever_the_address(
    mail_client: Any, inbox: Inbox, make_user: Any, services: Any
) -> None:
    accounts = [await make_user(email=f"rotated{n}@example.com") for n in range(PER_IP + 2)]
    for account in accounts[:PER_IP]:
        assert (await ask(mail_client, RESET, account.user.email)).status == 201
    await assert_mail_throttled(await ask(mail_client, RESET, accounts[PER_IP].user.email))
    # One budget for every mail a client asks for: confirmations too.
    pending = await make_user(email="pending@example.com", state="pending")
    await assert_mail_throttled(await ask(mail_client, CONFIRMATION, pending.user.email))
    assert (await ask(mail_client, RESET, accounts[-1].user.email, "1.0.0.7")).status == 201  # another client
    sent = [await mails_sent(inbox, services, a.user.email, "password_reset") for a in accounts]
    assert sent == [1] * PER_IP + [0, 1]
    assert inbox.to(pending.user.email) == []


@SQLITE_ONLY
async def test_the_mail_limit_is_shared_by_two_instances(
    make_mail_client: Any, inbox: Inbox, make_user: Any, services: Any
) -> None:
    a, b = await make_mail_client(), await make_mail_client()
    account = await make_user(email="twice@example.com")
    for client in (a, b, a, b, a):  # PER_ADDRESS requests
        assert (await ask(client, RESET, account.user.email)).status == 201
    await assert_mail_throttled(await ask(b, RESET, account.user.email))
    await assert_mail_throttled(await ask(a, RESET, account.user.email, "1.0.0.7"))
    # And at once, on both: the counting is atomic in Redis, not per process.
    other = await make_user(email="other@example.com")
    responses = await asyncio.gather(
        *(ask((a, b)[n % 2], RESET, other.user.email, f"81.2.69.{n + 1}") for n in range(16))
    )
    assert sorted(response.status for response in responses) == [201] * PER_ADDRESS + [429] * 11
    assert await mails_sent(inbox, services, account.user.email, "password_reset") == PER_ADDRESS
    assert await mails_sent(inbox, services, other.user.email, "password_reset") == PER_ADDRESS


@SQLITE_ONLY
async def test_the_mail_limit_lifts_when_the_window_ends(
    make_mail_client: Any, inbox: Inbox, make_user: Any, services: Any
) -> None:
    client = await make_mail_client(mail_max_requests_address=1, mail_requests_window=1)
    account = await make_user(email="patient@example.com")
    assert (await ask(client, RESET, account.user.email)).status == 201
    refused = await ask(client, RESET, account.user.email)
    await assert_mail_throttled(refused, window=1)
    await asyncio.sleep(1.1)  # the counters' Redis TTL is the window
    assert (await ask(client, RESET, account.user.email)).status == 201
    assert await mails_sent(inbox, services, account.user.email, "password_reset") == 2


@SQLITE_ONLY
async def test_sign_ups_from_one_ip_are_throttled_and_a_refused_one_creates_nothing(
    mail_client: Any, inbox: Inbox, make_user: Any, services: Any
) -> None:
    await first_user(mail_client, make_user)
    for n in range(PER_IP):
        assert (await sign_up(mail_client, f"signup{n}@example.com")).status == 201
    await assert_mail_throttled(await sign_up(mail_client, "refused@example.com"))
    assert await services.users.get_by_email("refused@example.com") is None
    for n in range(PER_IP):
        assert await mails_sent(inbox, services, f"signup{n}@example.com", "email_confirmation") == 1
    assert inbox.to("refused@example.com") == []
