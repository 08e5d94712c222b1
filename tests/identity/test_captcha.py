"""Captcha verification against local servers playing Google's siteverify and Geetest's v3 API."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from identity.captcha import Captcha
from identity.errors import CaptchaMissing, CaptchaRejected, RecordNotFound

ENDPOINTS = ("user_create", "session_create", "password_reset", "email_confirmation")
SECRET = "recaptcha-s3cret"
GT_ID = "0123456789abcdef0123456789abcdef"
GT_KEY = "geetest-private-key"
CHALLENGE = "f" * 32
SECCODE = "9c2e0d3b3d5e4a1f|jordan"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def solved(**override: Any) -> dict[str, Any]:
    """A Geetest response as the widget would post it after a successful solve."""
    answer = {
        "geetest_challenge": CHALLENGE,
        "geetest_validate": md5(GT_KEY + "geetest" + CHALLENGE),
        "geetest_seccode": SECCODE,
    }
    answer.update(override)
    return answer


class FakeProvider:
    """Google's siteverify and Geetest's register.php/validate.php, recording what they were sent."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.status = 200
        self.siteverify_answer: Any = {"success": True}
        self.register_answer: Any = {"challenge": "a" * 32}
        self.validate_body: str | None = None  # None: the right JSON answer
        self.delay = 0.0
        self.release = asyncio.Event()

    async def _pause(self) -> None:
        if self.delay:
            # Held until the test ends (or ``delay`` passes, then answered normally): a client that did
            # not give up in time would be told "success".
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), self.delay)

    async def siteverify(self, request: web.Request) -> web.Response:
        self.seen.append(dict(await request.post()))  # type: ignore[arg-type]
        await self._pause()
        if isinstance(self.siteverify_answer, str):
            return web.Response(text=self.siteverify_answer, status=self.status)
        return web.json_response(self.siteverify_answer, status=self.status)

    async def register(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.query))
        return web.json_response(self.register_answer, status=self.status)

    async def validate(self, request: web.Request) -> web.Response:
        form: dict[str, str] = dict(await request.post())  # type: ignore[arg-type]
        self.seen.append(form)
        body = self.validate_body
        if body is None:
            body = json.dumps({"seccode": md5(form["seccode"])})
        return web.Response(text=body, status=self.status)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def provider(aiohttp_server: Any) -> AsyncIterator[tuple[FakeProvider, str]]:
    fake = FakeProvider()
    app = web.Application()
    app.router.add_post("/recaptcha/api/siteverify", fake.siteverify)
    app.router.add_get("/register.php", fake.register)
    app.router.add_post("/validate.php", fake.validate)
    server = await aiohttp_server(app)
    yield fake, str(server.make_url("")).rstrip("/")
    fake.release.set()


def recaptcha(http: Any, base: str, **kwargs: Any) -> Captcha:
    return Captcha(
        "recaptcha", ENDPOINTS, http, recaptcha_secret_key=SECRET,
        recaptcha_verify_url=f"{base}/recaptcha/api/siteverify", **kwargs,
    )


def geetest(http: Any, base: str, **kwargs: Any) -> Captcha:
    return Captcha(
        "geetest", ENDPOINTS, http, geetest_id=GT_ID, geetest_key=GT_KEY, geetest_api_url=base, **kwargs
    )


def closed_url() -> str:
    return f"http://127.0.0.1:{unused_port()}"


async def test_kind_none_checks_nothing(http: Any, provider: Any) -> None:
    fake, base = provider
    captcha = Captcha("none", ENDPOINTS, http, recaptcha_verify_url=f"{base}/recaptcha/api/siteverify")
    assert captcha.kind == "none" and not captcha.protects("user_create")
    await captcha.verify("user_create", None)
    assert fake.seen == []


async def test_unprotected_endpoint_is_not_checked(http: Any, provider: Any) -> None:
    fake, base = provider
    url = f"{base}/recaptcha/api/siteverify"
    captcha = Captcha("recaptcha", {"user_create"}, http, recaptcha_verify_url=url)
    assert captcha.protects("user_create") and not captcha.protects("session_create")
    await captcha.verify("session_create", None)
    assert fake.seen == []


def test_unknown_kind_is_refused_at_start(http: Any) -> None:
    with pytest.raises(ValueError, match="hcaptcha"):
        Captcha("hcaptcha", ENDPOINTS, http)


@pytest.mark.parametrize("kind", ["recaptcha", "geetest"])
@pytest.mark.parametrize("response", [None, "", "   ", {}])
async def test_missing_response_is_required(http: Any, provider: Any, kind: str, response: object) -> None:
    fake, base = provider
    captcha = recaptcha(http, base) if kind == "recaptcha" else geetest(http, base)
    with pytest.raises(CaptchaMissing) as err:
        await captcha.verify("user_create", response)
    assert err.value.keys == ["identity.captcha.required"]
    assert fake.seen == []


async def test_recaptcha_passes_when_google_confirms(http: Any, provider: Any) -> None:
    fake, base = provider
    # The app hands over a factory: its ClientSession only exists once the app has started.
    await recaptcha(lambda: http, base).verify("session_create", "token-from-widget")
    assert fake.seen == [{"secret": SECRET, "response": "token-from-widget"}]


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (200, {"success": False, "error-codes": ["invalid-input-response"]}),
        (200, {"success": "true"}),
        (200, "<html>not json</html>"),
        (500, {"success": True}),
    ],
)
async def test_recaptcha_rejects_what_google_does_not_confirm(
    http: Any, provider: Any, status: int, answer: Any
) -> None:
    fake, base = provider
    fake.status, fake.siteverify_answer = status, answer
    with pytest.raises(CaptchaRejected) as err:
        await recaptcha(http, base).verify("user_create", "token")
    assert err.value.keys == ["identity.captcha.verification_failed"]
    assert len(fake.seen) == 1


async def test_recaptcha_object_response_is_rejected_unsent(http: Any, provider: Any) -> None:
    fake, base = provider
    with pytest.raises(CaptchaRejected):
        await recaptcha(http, base).verify("user_create", {"token": "x"})
    assert fake.seen == []


async def test_recaptcha_provider_down_is_rejected(http: Any) -> None:
    with pytest.raises(CaptchaRejected):
        await recaptcha(http, closed_url()).verify("user_create", "token")


async def test_recaptcha_slow_provider_is_rejected(http: Any, provider: Any) -> None:
    fake, base = provider
    fake.delay = 5.0
    with pytest.raises(CaptchaRejected):
        await recaptcha(http, base, timeout=0.05).verify("user_create", "token")
    assert len(fake.seen) == 1


@pytest.mark.parametrize("as_json_string", [False, True])
async def test_geetest_passes_a_solved_captcha(http: Any, provider: Any, as_json_string: bool) -> None:
    fake, base = provider
    response = json.dumps(solved()) if as_json_string else solved()
    await geetest(http, base).verify("user_create", response)
    [sent] = fake.seen
    assert sent["seccode"] == SECCODE
    assert sent["challenge"] == CHALLENGE
    assert sent["captchaid"] == GT_ID
    assert sent["json_format"] == "1"


async def test_geetest_accepts_a_bare_hash_answer(http: Any, provider: Any) -> None:
    fake, base = provider
    fake.validate_body = md5(SECCODE)
    await geetest(http, base).verify("user_create", solved())


@pytest.mark.parametrize(
    "response",
    [
        {k: v for k, v in solved().items() if k != "geetest_seccode"},
        {k: v for k, v in solved().items() if k != "geetest_challenge"},
        solved(geetest_validate=12345),
        solved(geetest_seccode=None),
        "not json",
        json.dumps([solved()]),
        ["a", "b"],
        42,
    ],
)
async def test_geetest_without_its_fields_is_400(http: Any, provider: Any, response: object) -> None:
    fake, base = provider
    with pytest.raises(CaptchaMissing) as err:
        await geetest(http, base).verify("user_create", response)
    assert err.value.keys == ["identity.captcha.mandatory_fields"]
    assert fake.seen == []


async def test_geetest_wrong_validate_hash_is_rejected_unsent(http: Any, provider: Any) -> None:
    fake, base = provider
    forged = solved(geetest_validate=md5("other-key" + "geetest" + CHALLENGE))
    with pytest.raises(CaptchaRejected):
        await geetest(http, base).verify("user_create", forged)
    assert fake.seen == []


@pytest.mark.parametrize(
    "body", [json.dumps({"seccode": "false"}), json.dumps({"seccode": md5("other")}), "false", md5("other")]
)
async def test_geetest_rejects_a_wrong_seccode_answer(http: Any, provider: Any, body: str) -> None:
    fake, base = provider
    fake.validate_body = body
    with pytest.raises(CaptchaRejected):
        await geetest(http, base).verify("user_create", solved())
    assert len(fake.seen) == 1


async def test_geetest_down_is_rejected(http: Any) -> None:
    with pytest.raises(CaptchaRejected):
        await geetest(http, closed_url()).verify("user_create", solved())


async def test_register_geetest_hashes_the_servers_challenge(http: Any, provider: Any) -> None:
    fake, base = provider
    answer = await geetest(http, base).register_geetest()
    assert answer == {"gt": GT_ID, "challenge": md5("a" * 32 + GT_KEY), "new_captcha": 1, "success": 1}
    assert fake.seen == [{"gt": GT_ID, "json_format": "1", "new_captcha": "1"}]


@pytest.mark.parametrize("server_answer", [{"challenge": ""}, {"challenge": "0"}, ["nope"]])
async def test_register_geetest_falls_back_on_a_bad_answer(
    http: Any, provider: Any, server_answer: Any
) -> None:
    fake, base = provider
    fake.register_answer = server_answer
    answer = await geetest(http, base).register_geetest()
    assert answer["success"] == 0 and answer["gt"] == GT_ID
    assert len(answer["challenge"]) == 32 and int(answer["challenge"], 16) >= 0


async def test_register_geetest_falls_back_when_geetest_is_down(http: Any) -> None:
    captcha = geetest(http, closed_url())
    first, second = await captcha.register_geetest(), await captcha.register_geetest()
    assert first["success"] == second["success"] == 0
    assert len(first["challenge"]) == 32 and first["challenge"] != second["challenge"]


async def test_register_geetest_is_not_found_without_geetest(http: Any, provider: Any) -> None:
    fake, base = provider
    with pytest.raises(RecordNotFound) as err:
        await recaptcha(http, base).register_geetest()
    assert err.value.keys == ["identity.captcha.geetest_disabled"]
    assert fake.seen == []
