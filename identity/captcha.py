"""Captcha on the protected identity endpoints (Barong §4.1): reCAPTCHA or Geetest v3, or none.

The endpoints are named as in Barong's ``captcha_protected_endpoints`` (``user_create``,
``session_create``, ``password_reset``, ``email_confirmation``).  Anything that goes wrong while asking the
provider counts as a failed verification (422), never as a pass: a captcha that fails open is no captcha.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Collection
from typing import Any

import aiohttp

from identity.errors import CaptchaMissing, CaptchaRejected, RecordNotFound

log = logging.getLogger(__name__)

KINDS = ("none", "recaptcha", "geetest")
GEETEST_FIELDS = ("geetest_challenge", "geetest_validate", "geetest_seccode")
# Sent to Geetest as ``sdk``; their server only records it.
_GEETEST_SDK = "python_authz_3"
# What a network call may raise once the request has started; all of them mean "not verified".
_PROVIDER_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ValueError)


def md5_hex(text: str) -> str:
    """Lower-case hex MD5 of ``text`` (the hash Geetest's protocol is built on)."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _is_blank(value: object) -> bool:
    # Ruby's ``blank?``, which Barong applies to ``captcha_response``: nil, "", "  ", {} and [] are missing.
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, dict | list):
        return not value
    return False


class Captcha:
    """Verifies captcha responses for the protected endpoints and serves Geetest's ``register`` step."""

    def __init__(
        self,
        kind: str,
        protected: Collection[str],
        http: aiohttp.ClientSession | Callable[[], aiohttp.ClientSession],
        *,
        recaptcha_secret_key: str = "",
        recaptcha_verify_url: str = "https://www.google.com/recaptcha/api/siteverify",
        geetest_id: str = "",
        geetest_key: str = "",
        geetest_api_url: str = "https://api.geetest.com",
        timeout: float = 5.0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"captcha kind must be one of {', '.join(KINDS)}, not {kind!r}")
        self._kind = kind
        self._protected = frozenset(protected)
        self._http = http
        self._recaptcha_secret = recaptcha_secret_key
        self._recaptcha_url = recaptcha_verify_url
        self._geetest_id = geetest_id
        self._geetest_key = geetest_key
        self._geetest_url = geetest_api_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @property
    def kind(self) -> str:
        """``none``, ``recaptcha`` or ``geetest``."""
        return self._kind

    def protects(self, endpoint: str) -> bool:
        """Whether a call to ``endpoint`` must carry a verified captcha response."""
        return self._kind != "none" and endpoint in self._protected

    def _session(self) -> aiohttp.ClientSession:
        # The app opens its ClientSession in a startup context, after this object was built.
        return self._http if isinstance(self._http, aiohttp.ClientSession) else self._http()

    async def verify(self, endpoint: str, response: object) -> None:
        """Check ``response`` (the request's ``captcha_response``) if ``endpoint`` is protected.

        Raises :class:`CaptchaMissing` (no response, or a Geetest object lacking fields) or
        :class:`CaptchaRejected` (the provider did not confirm it, or could not be asked).
        """
        if not self.protects(endpoint):
            return
        if _is_blank(response):
            raise CaptchaMissing()
        if self._kind == "recaptcha":
            await self._verify_recaptcha(response)
        else:
            await self._verify_geetest(_geetest_fields(response))

    async def _verify_recaptcha(self, response: object) -> None:
        if not isinstance(response, str):
            raise CaptchaRejected()
        # Barong does not send ``remoteip``; neither do we (it is optional for Google).
        form = {"secret": self._recaptcha_secret, "response": response}
        try:
            async with self._session().post(self._recaptcha_url, data=form, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise CaptchaRejected()
                answer = await resp.json(content_type=None)
        except _PROVIDER_ERRORS as exc:
            log.warning("reCAPTCHA siteverify failed: %s", type(exc).__name__)
            raise CaptchaRejected() from exc
        if not isinstance(answer, dict) or answer.get("success") is not True:
            raise CaptchaRejected()

    async def _verify_geetest(self, fields: dict[str, str]) -> None:
        challenge, seccode = fields["geetest_challenge"], fields["geetest_seccode"]
        expected = md5_hex(self._geetest_key + "geetest" + challenge)
        if not hmac.compare_digest(fields["geetest_validate"].encode(), expected.encode()):
            raise CaptchaRejected()
        form = {
            "seccode": seccode,
            "json_format": "1",
            "challenge": challenge,
            "captchaid": self._geetest_id,
            "sdk": _GEETEST_SDK,
        }
        try:
            async with self._session().post(
                f"{self._geetest_url}/validate.php", data=form, timeout=self._timeout
            ) as resp:
                if resp.status != 200:
                    raise CaptchaRejected()
                body = (await resp.text()).strip()
        except _PROVIDER_ERRORS as exc:
            log.warning("Geetest validate failed: %s", type(exc).__name__)
            raise CaptchaRejected() from exc
        if not hmac.compare_digest(_geetest_answer(body).encode(), md5_hex(seccode).encode()):
            raise CaptchaRejected()

    async def register_geetest(self) -> dict[str, Any]:
        """Geetest v3 ``register``: the ``gt``/``challenge`` pair the browser widget starts from.

        When Geetest cannot be reached the answer is in fallback mode (``success: 0``, random challenge), as
        Geetest's own SDKs do, so the page still renders.  Raises :class:`RecordNotFound` when the captcha
        kind is not ``geetest``.
        """
        if self._kind != "geetest":
            raise RecordNotFound("identity.captcha.geetest_disabled")
        params = {"gt": self._geetest_id, "json_format": "1", "new_captcha": "1"}
        challenge = ""
        try:
            async with self._session().get(
                f"{self._geetest_url}/register.php", params=params, timeout=self._timeout
            ) as resp:
                if resp.status == 200:
                    answer = await resp.json(content_type=None)
                    if isinstance(answer, dict) and isinstance(answer.get("challenge"), str):
                        challenge = answer["challenge"]
        except _PROVIDER_ERRORS as exc:
            log.warning("Geetest register failed: %s", type(exc).__name__)
        if len(challenge) == 32:
            return {
                "gt": self._geetest_id,
                "challenge": md5_hex(challenge + self._geetest_key),
                "new_captcha": 1,
                "success": 1,
            }
        log.warning("Geetest register gave no challenge; answering in fallback mode")
        return {"gt": self._geetest_id, "challenge": secrets.token_hex(16), "new_captcha": 1, "success": 0}


def _geetest_fields(response: object) -> dict[str, str]:
    """The three Geetest fields of ``response`` (a dict, or a JSON string encoding one)."""
    if isinstance(response, str):
        try:
            response = json.loads(response)
        except (ValueError, RecursionError):
            raise CaptchaMissing("identity.captcha.mandatory_fields") from None
    if not isinstance(response, dict):
        raise CaptchaMissing("identity.captcha.mandatory_fields")
    fields = {name: response.get(name) for name in GEETEST_FIELDS}
    if not all(isinstance(value, str) for value in fields.values()):
        raise CaptchaMissing("identity.captcha.mandatory_fields")
    return {name: str(value) for name, value in fields.items()}


def _geetest_answer(body: str) -> str:
    """The seccode hash in validate.php's answer: ``{"seccode": "<md5>"}`` or the bare hash."""
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not isinstance(answer, dict):
        return body
    seccode = answer.get("seccode")
    return seccode if isinstance(seccode, str) else ""
