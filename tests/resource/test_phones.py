"""Phones: adding a number sends a code by SMS (outbox or Twilio), the code verifies it, and the verified
number raises the user's level through the private label ``phone:verified``."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from identity.account_rules import AccountRules
from tests.faults import free_port
from tests.identity.helpers import browser
from tests.resource.helpers import RESOURCE, RESOURCE_ALIAS, bearer, jwt_for

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PHONES = f"{RESOURCE}/phones"
NUMBER = "+44 7418 084106"  # a valid GB mobile number
DIGITS = "447418084106"
OTHER = "+1 202 555 0143"


def outbox(settings: Any) -> list[dict[str, Any]]:
    """The SMS written to ``<data dir>/outbox/sms``, oldest first."""
    directory = Path(settings.data_dir) / "outbox" / "sms"
    if not directory.is_dir():
        return []
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def codes(settings: Any) -> list[str]:
    """The codes of the SMS in the outbox, oldest first."""
    found = [re.search(r"\b(\d{6})\b", message["text"]) for message in outbox(settings)]
    assert all(found), outbox(settings)
    return [match.group(1) for match in found if match]


def last_code(settings: Any) -> str:
    sent = codes(settings)
    assert sent, "no SMS was written"
    return sent[-1]


async def add(client: Any, token: str, number: str = NUMBER, **extra: Any) -> Any:
    return await client.post(PHONES, json={"phone_number": number, **extra}, headers=bearer(token))


async def verify(client: Any, token: str, code: str, number: str = NUMBER) -> Any:
    body = {"phone_number": number, "verification_code": code}
    return await client.post(f"{PHONES}/verify", json=body, headers=bearer(token))


async def send_code(client: Any, token: str, number: str = NUMBER) -> Any:
    return await client.post(f"{PHONES}/send_code", json={"phone_number": number}, headers=bearer(token))


async def errors(response: Any) -> tuple[int, list[str]]:
    return response.status, (await response.json())["errors"]


async def test_adding_a_phone_sends_a_code_and_lists_the_number_unverified(
    api: Any, make_user: Any, settings: Any
) -> None:
    token = await jwt_for(api, await make_user())
    response = await add(api, token, channel="sms")
    assert response.status == 201, await response.text()
    assert await response.json() == {"message": "Code was sent successfully via sms"}
    [message] = outbox(settings)
    assert message["to"] == f"+{DIGITS}"
    assert re.fullmatch(r"Your verification code for .+: \d{6}", message["text"])

    response = await api.get(f"{RESOURCE_ALIAS}/phones", headers=bearer(token))
    assert response.status == 200
    assert await response.json() == [{"country": "GB", "number": "44******4106", "validated_at": None}]


async def test_the_sms_code_verifies_the_phone_and_raises_the_level(
    api: Any, make_user: Any, services: Any, settings: Any
) -> None:
    account = await make_user()
    await services.users.put_label(account.user.uid, "email", "verified", "private", AccountRules())
    token = await jwt_for(api, account)
    assert (await add(api, token, number="447418084106")).status == 201

    response = await verify(api, token, last_code(settings), number="+44 07418 084106")
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["uid"] == account.user.uid
    assert body["level"] == 2
    assert {(label["key"], label["value"], label["scope"]) for label in body["labels"]} >= {
        ("phone", "verified", "private")
    }
    assert [phone["number"] for phone in body["phones"]] == ["44******4106"]
    assert body["phones"][0]["validated_at"] is not None

    user = await services.users.get_by_uid(account.user.uid)
    assert user.level == 2
    [phone] = await (await api.get(PHONES, headers=bearer(token))).json()
    assert phone["validated_at"] is not None
    # The code was used up, and the number is now taken (by this user too).
    assert await errors(await verify(api, token, last_code(settings))) == (
        400,
        ["resource.phone.number_exist"],
    )
    assert await errors(await send_code(api, token)) == (400, ["resource.phone.number_exist"])


@SQLITE_ONLY
async def test_numbers_are_shown_whole_without_data_masking(
    make_client: Any, make_user: Any, settings: Any
) -> None:
    client = await make_client(api_data_masking=False)
    token = await jwt_for(client, await make_user())
    assert (await add(client, token, number="12025550143")).status == 201
    response = await client.get(PHONES, headers=bearer(token))
    assert await response.json() == [{"country": "US", "number": "12025550143", "validated_at": None}]


@SQLITE_ONLY
async def test_bad_parameters_are_refused_with_barongs_keys(api: Any, make_user: Any, settings: Any) -> None:
    token = await jwt_for(api, await make_user())
    for number in ("123", "+44 12", "phone", "+999 1234 5678", "1" * 40):
        assert await errors(await add(api, token, number=number)) == (400, ["resource.phone.invalid_num"])
    response = await api.post(PHONES, json={}, headers=bearer(token))
    assert await errors(response) == (422, ["resource.phone.missing_phone_number"])
    response = await api.post(PHONES, json={"phone_number": " ", "channel": "fax"}, headers=bearer(token))
    assert await errors(response) == (
        422,
        ["resource.phone.empty_phone_number", "resource.phone.invalid_channel"],
    )
    # Barong's "call" channel needs Twilio Verify; we only send text messages.
    assert await errors(await add(api, token, channel="call")) == (422, ["resource.phone.invalid_channel"])
    response = await api.post(f"{PHONES}/verify", json={"phone_number": NUMBER}, headers=bearer(token))
    assert await errors(response) == (422, ["resource.phone.missing_verification_code"])
    assert outbox(settings) == []
    assert await (await api.get(PHONES, headers=bearer(token))).json() == []


@SQLITE_ONLY
async def test_the_phone_endpoints_need_a_bearer_token(api: Any) -> None:
    for method, path in (
        ("GET", PHONES),
        ("POST", PHONES),
        ("POST", f"{PHONES}/send_code"),
        ("POST", f"{PHONES}/verify"),
    ):
        response = await api.request(method, path, json={"phone_number": NUMBER})
        assert await errors(response) == (401, ["jwt.decode_and_verify"])


async def test_a_number_verified_by_another_user_cannot_be_added(
    api: Any, make_user: Any, settings: Any
) -> None:
    first = await jwt_for(api, await make_user())
    second = await jwt_for(api, await make_user())
    assert (await add(api, first)).status == 201
    assert (await add(api, second)).status == 201  # nobody has verified it yet
    second_code = last_code(settings)
    assert (await verify(api, first, codes(settings)[0])).status == 201

    assert await errors(await add(api, second, number=DIGITS)) == (400, ["resource.phone.number_exist"])
    assert await errors(await send_code(api, second)) == (400, ["resource.phone.number_exist"])
    assert await errors(await verify(api, second, second_code)) == (400, ["resource.phone.number_exist"])


@SQLITE_ONLY
async def test_one_number_twice_and_numbers_of_others(api: Any, make_user: Any, settings: Any) -> None:
    token = await jwt_for(api, await make_user())
    assert (await add(api, token)).status == 201
    assert await errors(await add(api, token)) == (400, ["resource.phone.exists"])
    assert await errors(await send_code(api, token, OTHER)) == (404, ["resource.phone.doesnt_exist"])
    assert await errors(await verify(api, token, "123456", OTHER)) == (404, ["resource.phone.doesnt_exist"])
    assert len(outbox(settings)) == 1


@SQLITE_ONLY
async def test_a_new_code_waits_for_the_resend_interval_and_replaces_the_old_one(
    api: Any, make_user: Any, settings: Any, clock: Any
) -> None:
    token = await jwt_for(api, await make_user())
    assert (await add(api, token)).status == 201
    first = last_code(settings)
    assert await errors(await send_code(api, token)) == (422, ["resource.phone.exceeded_resend_limit"])
    assert len(outbox(settings)) == 1

    clock.advance(settings.phone_code_resend_interval)
    response = await send_code(api, token)
    assert response.status == 201, await response.text()
    assert await response.json() == {"message": "Code was sent successfully via sms"}
    second = last_code(settings)
    if first != second:
        assert await errors(await verify(api, token, first)) == (404, ["resource.phone.verification_invalid"])
    assert (await verify(api, token, second)).status == 201


@SQLITE_ONLY
async def test_wrong_codes_use_up_the_code(api: Any, make_user: Any, settings: Any) -> None:
    token = await jwt_for(api, await make_user())
    assert (await add(api, token)).status == 201
    code = last_code(settings)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(4):
        assert await errors(await verify(api, token, wrong)) == (404, ["resource.phone.verification_invalid"])
    assert (await verify(api, token, code)).status == 201  # the fifth attempt


@SQLITE_ONLY
async def test_after_five_wrong_codes_the_right_one_is_refused(
    api: Any, make_user: Any, settings: Any
) -> None:
    token = await jwt_for(api, await make_user())
    assert (await add(api, token)).status == 201
    code = last_code(settings)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        assert await errors(await verify(api, token, wrong)) == (404, ["resource.phone.verification_invalid"])
    assert await errors(await verify(api, token, code)) == (404, ["resource.phone.verification_invalid"])
    [phone] = await (await api.get(PHONES, headers=bearer(token))).json()
    assert phone["validated_at"] is None


@SQLITE_ONLY
async def test_an_expired_code_is_refused(
    make_client: Any, make_user: Any, settings: Any, clock: Any
) -> None:
    client = await make_client(phone_code_expire_time=30)
    token = await jwt_for(client, await make_user())
    assert (await add(client, token)).status == 201
    clock.advance(30)
    response = await verify(client, token, last_code(settings))
    assert await errors(response) == (404, ["resource.phone.verification_invalid"])


class FakeTwilio:
    """A local HTTP server in Twilio's place: records the requests, answers with ``status``."""

    def __init__(self) -> None:
        self.status = 201
        self.requests: list[dict[str, Any]] = []
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            {
                "path": request.path,
                "authorization": request.headers.get("Authorization"),
                "form": dict(await request.post()),
            }
        )
        return web.json_response({"sid": "SM123", "status": "queued"}, status=self.status)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", fake.port).start()
    yield fake
    await runner.cleanup()


def twilio_settings(url: str) -> dict[str, Any]:
    return {
        "sms_sender": "twilio",
        "twilio_url": url,
        "twilio_account_sid": "AC0123",
        "twilio_auth_token": "token-42",
        "twilio_phone_number": "+15005550006",
        "sms_content_template": "{code} is your {app_name} code",
        "app_name": "Exchange",
    }


@SQLITE_ONLY
async def test_the_twilio_sender_posts_the_message_to_twilio(
    make_client: Any, make_user: Any, twilio: FakeTwilio, settings: Any
) -> None:
    client = await make_client(**twilio_settings(twilio.url))
    token = await jwt_for(client, await make_user())
    response = await add(client, token)
    assert response.status == 201, await response.text()
    [request] = twilio.requests
    assert request["path"] == "/2010-04-01/Accounts/AC0123/Messages.json"
    assert request["authorization"] == "Basic QUMwMTIzOnRva2VuLTQy"  # base64("AC0123:token-42")
    assert request["form"]["To"] == f"+{DIGITS}"
    assert request["form"]["From"] == "+15005550006"
    code, rest = request["form"]["Body"].split(" ", 1)
    assert re.fullmatch(r"\d{6}", code) and rest == "is your Exchange code"
    assert outbox(settings) == []
    assert (await verify(client, token, code)).status == 201


@SQLITE_ONLY
async def test_a_refusing_twilio_is_503_and_nothing_is_kept(
    make_client: Any, make_user: Any, twilio: FakeTwilio
) -> None:
    client = await make_client(**twilio_settings(twilio.url))
    token = await jwt_for(client, await make_user())
    twilio.status = 400
    assert await errors(await add(client, token)) == (503, ["resource.phone.sms_failed"])
    assert await (await client.get(PHONES, headers=bearer(token))).json() == []

    twilio.status = 201  # at once: a send that failed does not count for the resend interval
    assert (await add(client, token)).status == 201
    assert len(twilio.requests) == 2


@SQLITE_ONLY
async def test_an_unreachable_twilio_is_503(make_client: Any, make_user: Any) -> None:
    client = await make_client(**twilio_settings(f"http://127.0.0.1:{free_port()}"))
    token = await jwt_for(client, await make_user())
    assert await errors(await add(client, token)) == (503, ["resource.phone.sms_failed"])
    assert await (await client.get(PHONES, headers=bearer(token))).json() == []


# --- throttling: codes per number (whoever asks) and per client IP --------------------------------------


def from_ip(ip: str, token: str) -> dict[str, str]:
    """The bearer headers of a request the gateway forwards from ``ip``."""
    return browser(ip, Authorization=token)


async def assert_sms_throttled(response: Any) -> None:
    assert await errors(response) == (429, ["resource.phone.too_many_requests"])
    assert 1 <= int(response.headers["Retry-After"]) <= 3600


@SQLITE_ONLY
async def test_a_flood_of_code_requests_for_one_number_sends_only_the_limit(
    make_client: Any, make_user: Any, settings: Any
) -> None:
    client = await make_client(phone_code_resend_interval=0)  # no interval: only the throttle holds it back
    token = await jwt_for(client, await make_user())
    assert (await add(client, token)).status == 201
    body = {"phone_number": NUMBER}
    responses = await asyncio.gather(
        *(
            client.post(f"{PHONES}/send_code", json=body, headers=from_ip(f"81.2.69.{n + 1}", token))
            for n in range(24)
        )
    )
    limit = 5  # AUTHZ_SMS_MAX_REQUESTS_NUMBER's default
    assert sorted(response.status for response in responses) == [201] * (limit - 1) + [429] * (25 - limit)
    for response in responses:
        if response.status == 429:
            await assert_sms_throttled(response)
    assert len(outbox(settings)) == limit


@SQLITE_ONLY
async def test_codes_for_one_number_are_limited_whoever_asks(
    api: Any, make_user: Any, settings: Any
) -> None:
    tokens = [await jwt_for(api, await make_user()) for _ in range(6)]
    body = {"phone_number": NUMBER}
    for n, token in enumerate(tokens[:5]):
        response = await api.post(PHONES, json=body, headers=from_ip(f"81.2.69.{n + 1}", token))
        assert response.status == 201, await response.text()
    await assert_sms_throttled(await api.post(PHONES, json=body, headers=from_ip("1.0.0.7", tokens[5])))
    assert await (await api.get(PHONES, headers=bearer(tokens[5]))).json() == []  # not added either
    assert len(outbox(settings)) == 5


@SQLITE_ONLY
async def test_codes_from_one_ip_are_limited_across_numbers(api: Any, make_user: Any, settings: Any) -> None:
    per_ip = 10  # AUTHZ_SMS_MAX_REQUESTS_IP's default
    token = await jwt_for(api, await make_user())
    numbers = [f"+4474180841{n:02d}" for n in range(per_ip + 2)]
    for number in numbers[:per_ip]:
        assert (await add(api, token, number)).status == 201
    await assert_sms_throttled(await add(api, token, numbers[per_ip]))
    response = await api.post(PHONES, json={"phone_number": numbers[-1]}, headers=from_ip("1.0.0.7", token))
    assert response.status == 201
    assert [message["to"] for message in outbox(settings)] == [*numbers[:per_ip], numbers[-1]]


@SQLITE_ONLY
async def test_the_code_limit_lifts_when_the_window_ends(
    make_client: Any, make_user: Any, settings: Any, clock: Any
) -> None:
    client = await make_client(sms_max_requests_number=1, sms_requests_window=1)
    token = await jwt_for(client, await make_user())
    assert (await add(client, token)).status == 201
    clock.advance(settings.phone_code_resend_interval)
    refused = await send_code(client, token)
    assert await errors(refused) == (429, ["resource.phone.too_many_requests"])
    assert refused.headers["Retry-After"] == "1"
    await asyncio.sleep(1.1)  # the counters' Redis TTL is the window
    assert (await send_code(client, token)).status == 201
    assert len(outbox(settings)) == 2
