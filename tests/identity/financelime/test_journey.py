"""The whole token-API journey of the issue, on both path sets, against real Redis, SQL and SMTP:
sign up with an invite code → confirm → receive the password → get tokens → the decision endpoint allows
with the access token → list sessions → revoke → the decision endpoint denies → refreshing fails."""

from __future__ import annotations

from typing import Any

import pytest

from tests.identity.financelime.helpers import PATH_SETS, Api, error_of, headers, link_in, password_in

PROTECTED = "/api/v2/auth/api/v2/peatio/account/balances"  # members may GET it (policies/permissions.yml)


@pytest.mark.parametrize("paths", sorted(PATH_SETS))
async def test_sign_up_to_revocation(api_client: Any, inbox: Any, invite: str, paths: str) -> None:
    api = Api(api_client, PATH_SETS[paths])
    email = f"journey-{paths}@example.com"

    response = await api.call("sign_up", {"email": email, "inviteCode": invite, "language": "en"})
    assert response.status == 204, await response.text()
    (confirmation,) = await inbox.wait_for(email, "signup_confirmation")
    link = link_in(confirmation, "u")
    assert "https://api.example.test/u/" in confirmation.get_body(("plain",)).get_content()

    page = await api_client.get(link)
    assert page.status == 200
    assert page.content_type == "text/html"
    (welcome,) = await inbox.wait_for(email, "account_password")
    password = password_in(welcome)

    grant = await api.login(email, password)
    assert set(grant) == {"accessToken", "refreshToken", "sessionID"}
    await inbox.wait_for(email, "new_login")

    allowed = await api_client.get(PROTECTED, headers=headers(grant["accessToken"]))
    assert allowed.status == 200, await allowed.text()
    assert allowed.headers["Authorization"].startswith("Bearer ")

    listed = await api.call("sessions", token=grant["accessToken"])
    assert listed.status == 200
    sessions = await listed.json()
    assert [s["sessionID"] for s in sessions] == [grant["sessionID"]]
    assert sessions[0]["platform"] == "Linux x86_64"
    assert sessions[0]["updatedAt"].endswith("Z")

    revoked = await api.call("revoke", {"sessionID": grant["sessionID"]}, token=grant["accessToken"])
    assert revoked.status == 204

    denied = await api_client.get(PROTECTED, headers=headers(grant["accessToken"]))
    assert denied.status == 401
    assert await denied.json() == {"errors": ["authz.invalid_session"]}

    refreshed = await api.call("refresh", {"refreshToken": grant["refreshToken"]})
    assert await error_of(refreshed) == (404, "USER_NOT_FOUND")
