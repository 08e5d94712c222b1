"""One user's whole journey through the real app, real SQL, Redis and SMTP: sign up → confirmation mail →
confirm → login → decision allowed → 2FA on → login needs the code → password reset by mail → the old
sessions are refused by the decision endpoint → login with the new password and a code."""

from __future__ import annotations

from typing import Any

import pytest

from identity import totp
from identity.login import otp_context
from tests.authz.helpers import announcer, bearer_claims
from tests.identity.conftest import Inbox, token_in
from tests.identity.helpers import PROTECTED, browser, cheap_argon2, decision_status, with_cookie

USERS = "/api/v2/barong/identity/users"
SESSIONS = "/api/v2/barong/identity/sessions"


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


async def test_sign_up_to_password_reset(
    mail_client: Any, inbox: Inbox, make_user: Any, services: Any, clock: Any
) -> None:
    client = mail_client
    await make_user(email="founder@example.com")  # not the first account: no superadmin shortcut
    email, password = "journey@example.com", "Journey-Begins-42"

    signed_up = await client.post(USERS, json={"email": email, "password": password}, headers=browser())
    assert signed_up.status == 201, await signed_up.text()
    assert (await signed_up.json())["state"] == "pending"
    pending_cookie = signed_up.cookies["_barong_session"].value
    assert (await decision_status(client, pending_cookie))[0] == 200  # pending accounts may browse

    token = token_in((await inbox.wait_for(email, "email_confirmation"))[0], "confirmation_token")
    confirmed = await client.post(f"{USERS}/email/confirm_code", json={"token": token}, headers=browser())
    assert confirmed.status == 201, await confirmed.text()
    assert ((await confirmed.json())["state"], (await confirmed.json())["level"]) == ("active", 1)

    logged_in = await client.post(SESSIONS, json={"email": email, "password": password}, headers=browser())
    assert logged_in.status == 200, await logged_in.text()
    cookie = logged_in.cookies["_barong_session"].value
    allowed = await client.get(PROTECTED, headers=with_cookie(cookie))
    assert allowed.status == 200
    claims = await bearer_claims(client, allowed.headers["Authorization"])
    assert (claims["email"], claims["state"], claims["level"]) == (email, "active", 1)
    await inbox.wait_for(email, "new_login")

    # 2FA on (the resource API's /otp/enable comes with the next issue; the service call is the same).
    user = await services.users.get_by_email(email)
    secret = totp.new_secret()
    encrypted = services.box.encrypt(secret, context=otp_context(user.uid))
    await services.users.update(user.uid, otp=True, otp_secret_encrypted=encrypted)
    await announcer(client).user_changed(user.uid)
    no_code = await client.post(SESSIONS, json={"email": email, "password": password}, headers=browser())
    assert await no_code.json() == {"errors": ["identity.session.missing_otp"]}
    code = totp.code_at(secret, clock())
    with_code = await client.post(
        SESSIONS, json={"email": email, "password": password, "otp_code": code}, headers=browser()
    )
    assert with_code.status == 200, await with_code.text()
    second_cookie = with_code.cookies["_barong_session"].value
    assert (await decision_status(client, second_cookie))[0] == 200

    reset = await client.post(f"{USERS}/password/generate_code", json={"email": email}, headers=browser())
    assert reset.status == 201
    reset_token = token_in((await inbox.wait_for(email, "password_reset"))[0], "reset_token")
    new_password = "Journey-Continues-43"
    done = await client.post(
        f"{USERS}/password/confirm_code",
        json={
            "reset_password_token": reset_token,
            "password": new_password,
            "confirm_password": new_password,
        },
        headers=browser(),
    )
    assert done.status == 201, await done.text()
    for old in (pending_cookie, cookie, second_cookie):
        status, body = await decision_status(client, old)
        assert (status, body) == (401, {"errors": ["authz.invalid_session"]})
    await inbox.wait_for(email, "password_changed")

    old_password = await client.post(
        SESSIONS, json={"email": email, "password": password, "otp_code": code}, headers=browser()
    )
    assert await old_password.json() == {"errors": ["identity.session.invalid_params"]}
    clock.advance(totp.STEP)  # a fresh code: the last one was used
    again = await client.post(
        SESSIONS,
        json={"email": email, "password": new_password, "otp_code": totp.code_at(secret, clock())},
        headers=browser(),
    )
    assert again.status == 200, await again.text()
    assert (await decision_status(client, again.cookies["_barong_session"].value))[0] == 200
    actions = [(a.topic, a.action, a.result) for a in await services.activities.list(user_id=user.id)]
    assert actions[0] == ("account", "signup", "succeed")
    for expected in [
        ("session", "login", "succeed"),
        ("session", "login::2fa", "succeed"),
        ("password", "request password reset", "succeed"),
        ("password", "password reset", "succeed"),
        ("session", "login", "failed"),
    ]:
        assert expected in actions
