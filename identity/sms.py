"""Where a phone verification code goes: ``<data dir>/outbox/sms/`` (development) or Twilio's REST API.

Barong's ``PHONE_VERIFICATION`` (``mock`` | ``twilio_sms``): we generate and check the codes ourselves and
only need a sender.  A sender that cannot deliver raises ``ServiceUnavailable("resource.phone.sms_failed")``;
the caller then keeps no code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import aiohttp

from identity.errors import ServiceUnavailable

log = logging.getLogger(__name__)

SMS_FAILED = "resource.phone.sms_failed"


class SmsSender(Protocol):
    """Delivers one text message to ``to`` (E.164 with the leading ``+``)."""

    async def send(self, to: str, text: str) -> None: ...


class OutboxSmsSender:
    """Writes each message as a JSON file ``{"to", "text", "created_at"}`` into ``directory``.

    Files are written under a temporary name and renamed, so a reader never sees half a message; the
    directory is private to the service's user (the files hold live codes).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def __str__(self) -> str:
        return f"sms outbox {self.directory}"

    async def send(self, to: str, text: str) -> None:
        try:
            path = await asyncio.to_thread(self._write, to, text)
        except OSError as exc:
            log.error("cannot write an SMS into %s: %s", self.directory, exc)
            raise ServiceUnavailable(SMS_FAILED) from exc
        log.info("SMS written to %s", path)

    def _write(self, to: str, text: str) -> Path:
        for directory in (self.directory.parent, self.directory):  # the mail outbox is the parent
            if not directory.is_dir():
                directory.mkdir(parents=True, exist_ok=True)
                # mkdir's mode is filtered by the umask; the files hold live codes, so say it exactly.
                os.chmod(directory, 0o700)
        now = datetime.now(UTC)
        body = json.dumps({"to": to, "text": text, "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")})
        path = self.directory / f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{secrets.token_hex(4)}.json"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


class TwilioSmsSender:
    """Sends through Twilio's Messages API (``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``)."""

    def __init__(
        self,
        http: aiohttp.ClientSession | Callable[[], aiohttp.ClientSession],
        *,
        base_url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        timeout: float = 10.0,
    ) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {credentials}"}
        self._from = from_number
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __str__(self) -> str:
        return f"twilio {self._url}"

    async def send(self, to: str, text: str) -> None:
        http = self._http if isinstance(self._http, aiohttp.ClientSession) else self._http()
        form = {"To": to, "From": self._from, "Body": text}
        try:
            async with http.post(
                self._url, data=form, headers=self._headers, timeout=self._timeout
            ) as response:
                if not 200 <= response.status < 300:
                    detail = (await response.text())[:200]
                    log.error("Twilio refused an SMS: %s %s", response.status, detail)
                    raise ServiceUnavailable(SMS_FAILED)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.error("cannot reach Twilio at %s: %s", self._url, exc or type(exc).__name__)
            raise ServiceUnavailable(SMS_FAILED) from exc
