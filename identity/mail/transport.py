"""Where a rendered e-mail goes: an SMTP server (aiosmtplib), or ``<data dir>/outbox/`` when none is set.

A transport either delivers or raises :class:`TransientMailError` (try again later: the server is down,
slow, or answered 4xx) or :class:`PermanentMailError` (retrying cannot help: a 5xx reply such as an
unknown recipient). The mailer decides about retries; transports never retry themselves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

log = logging.getLogger(__name__)

# Not part of the mail's meaning; lets the outbox name files and keeps the template visible to operators.
TEMPLATE_HEADER = "X-Mail-Template"

TLS_MODES = {"auto": None, "starttls": True, "none": False}


class MailError(Exception):
    """Base of the delivery errors; the message is the reason shown in logs (never a secret)."""


class TransientMailError(MailError):
    """Delivery failed for now (connection refused, timeout, 4xx reply); a later attempt may succeed."""


class PermanentMailError(MailError):
    """Delivery can never succeed as things are (5xx reply, TLS required but not offered)."""


class MailTransport(Protocol):
    """Hands one message over for delivery."""

    async def deliver(self, message: EmailMessage) -> None:
        """Deliver ``message`` or raise :class:`TransientMailError` / :class:`PermanentMailError`."""
        ...


def _by_reply_code(code: int, reason: str) -> MailError:
    # RFC 5321 4.2.1: 4yz is a transient negative completion, 5yz a permanent one.
    if 500 <= code < 600:
        return PermanentMailError(reason)
    return TransientMailError(reason)


class SmtpTransport:
    """Sends through an SMTP server given as ``smtp://[user:password@]host[:port]`` or ``smtps://...``.

    ``tls`` is ``auto`` (STARTTLS when the server offers it), ``starttls`` (required) or ``none``; it
    does not apply to ``smtps://``, which is TLS from the first byte. Default ports: 25 and 465.
    """

    def __init__(
        self, url: str, *, tls: str = "auto", validate_certs: bool = True, timeout: float = 10.0
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("SMTP URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("SMTP URL has no host")
        if tls not in TLS_MODES:
            raise ValueError(f"SMTP TLS mode must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        implicit = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if implicit else 25)  # .port raises ValueError when malformed
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password is not None else None
        self._use_tls = implicit
        self._start_tls = False if implicit else TLS_MODES[tls]
        self._validate_certs = validate_certs
        self._timeout = timeout

    def __str__(self) -> str:
        # Used in logs: never the credentials.
        return f"{'smtps' if self._use_tls else 'smtp'}://{self.host}:{self.port}"

    async def deliver(self, message: EmailMessage) -> None:
        """Send ``message`` to its ``To`` recipients, classifying failures as transient or permanent."""
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                validate_certs=self._validate_certs,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # One recipient per message here; with several, a single transient refusal is worth a retry.
            codes = [refused.code for refused in exc.recipients]
            reason = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise _by_reply_code(min(codes, default=451), f"recipient refused: {reason}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_reply_code(exc.code, f"{exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentMailError(f"{self}: {exc}") from exc
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            raise TransientMailError(f"{self}: {exc or type(exc).__name__}") from exc


class OutboxTransport:
    """Writes each message as an ``.eml`` file into ``directory`` (for development, no SMTP server).

    Names are ``<UTC time>-<template>-<random>.eml``, unique and sorted by time. Each file is written
    under a temporary name and renamed, so a reader never sees half a message.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def __str__(self) -> str:
        return f"outbox {self.directory}"

    async def deliver(self, message: EmailMessage) -> None:
        """Write ``message`` into the outbox; a failing disk is a transient error."""
        try:
            path = await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise TransientMailError(f"cannot write to {self.directory}: {exc}") from exc
        log.info("mail to %s (%s) written to %s", message["To"], message[TEMPLATE_HEADER], path)

    def _write(self, message: EmailMessage) -> Path:
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            # mkdir's mode is filtered by the umask; the outbox holds live tokens, so say it exactly.
            os.chmod(self.directory, 0o700)
        template = re.sub(r"[^a-z0-9_]", "_", str(message[TEMPLATE_HEADER] or "mail").lower())
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.directory / f"{stamp}-{template}-{secrets.token_hex(4)}.eml"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(message.as_bytes())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def transport_for(
    smtp_url: str, data_dir: Path, *, tls: str, validate_certs: bool, timeout: float
) -> MailTransport:
    """The SMTP transport for ``smtp_url``, or the outbox under ``data_dir`` when the URL is empty."""
    if not smtp_url:
        return OutboxTransport(Path(data_dir) / "outbox")
    return SmtpTransport(smtp_url, tls=tls, validate_certs=validate_certs, timeout=timeout)
