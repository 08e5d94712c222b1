"""The mail service: the request path renders and queues, a background worker delivers and retries.

Sending never fails or slows a user's request on account of mail: rendering happens at once (a template
error is a bug and raises), delivery happens later in :meth:`Mailer.run`. Losing a mail when Redis is down
is accepted; failing the request that caused it is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any, cast

from redis.exceptions import RedisError

from identity.errors import StorageUnavailable
from identity.mail.queue import QueuedMail, RedisMailQueue
from identity.mail.rendering import MailTemplates
from identity.mail.transport import TEMPLATE_HEADER, MailTransport, PermanentMailError, TransientMailError

log = logging.getLogger(__name__)

# How long an idle worker waits before looking at the queue again; also bounds how late stop() is seen.
POLL_INTERVAL = 0.25
# Longest pause between attempts to reach Redis during an outage.
MAX_OUTAGE_WAIT = 5.0

_QUEUE_DOWN = (StorageUnavailable, RedisError)


class Mailer:
    """Renders e-mails into the queue (:meth:`send`) and delivers them with retries (:meth:`run`).

    A failed attempt that may succeed later is retried after ``retry_delay`` seconds, then twice as long
    each time, up to ``max_attempts`` attempts in all; a permanent failure is given up at once.
    """

    def __init__(
        self,
        queue: RedisMailQueue,
        transport: MailTransport,
        templates: MailTemplates,
        *,
        sender: str,
        app_name: str,
        max_attempts: int = 8,
        retry_delay: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _, address = parseaddr(sender)
        if "@" not in address:
            raise ValueError(f"mail sender {sender!r} has no e-mail address")
        if max_attempts < 1 or retry_delay <= 0:
            raise ValueError("mail max_attempts must be at least 1 and retry_delay positive")
        self._queue = queue
        self._transport = transport
        self._templates = templates
        self._sender = sender
        self._domain = address.rpartition("@")[2]
        self._app_name = app_name
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._clock = clock
        self._stopping = asyncio.Event()

    async def send(self, template: str, to: str, language: str | None, context: Mapping[str, Any]) -> None:
        """Render ``template`` for ``to`` and queue it; returns without raising when Redis is down."""
        full_context = {**context, "app_name": self._app_name, "email": to}
        subject, text, html = self._templates.render(template, language, full_context)
        message = self._compose(template, to, subject, text, html)
        queued = QueuedMail(to=to, template=template, raw=message.as_string())
        try:
            await self._queue.push(queued, self._clock())
        except _QUEUE_DOWN as exc:
            reason = exc.__cause__ or exc
            log.error("mail to %s (%s) is lost, the queue is unavailable: %r", to, template, reason)

    def _compose(self, template: str, to: str, subject: str, text: str, html: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(self._clock(), usegmt=True)
        message["Message-ID"] = make_msgid(domain=self._domain)
        message[TEMPLATE_HEADER] = template
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

    async def deliver_due(self) -> int:
        """Try every message that is due now, once each, without waiting; return how many were tried."""
        return await self._drain(stoppable=False)

    async def run(self) -> None:
        """Deliver queued mail until :meth:`stop`, riding out Redis outages and bad messages."""
        log.info("mail worker started, delivering via %s", self._transport)
        outage = 0
        while not self._stopping.is_set():
            try:
                attempted = await self._drain(stoppable=True)
            except _QUEUE_DOWN as exc:
                outage += 1
                if outage == 1:
                    log.warning("mail queue unavailable, will keep trying: %r", exc.__cause__ or exc)
                await self._wait(min(POLL_INTERVAL * 2**outage, MAX_OUTAGE_WAIT))
                continue
            except Exception:
                # A bug must not end the only worker of the process; it is logged with its traceback.
                log.exception("mail worker failed; continuing")
                await self._wait(MAX_OUTAGE_WAIT)
                continue
            if outage:
                log.info("mail queue available again")
                outage = 0
            if not attempted:
                await self._wait(POLL_INTERVAL)
        log.info("mail worker stopped")

    def stop(self) -> None:
        """Make :meth:`run` return once the message being delivered (if any) is done."""
        self._stopping.set()

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _drain(self, *, stoppable: bool) -> int:
        attempted = 0
        while not (stoppable and self._stopping.is_set()):
            mail = await self._queue.claim(self._clock())
            if mail is None:
                break
            attempted += 1
            await self._attempt(mail)
        return attempted

    async def _attempt(self, mail: QueuedMail) -> None:
        try:
            message = cast(EmailMessage, email.message_from_string(mail.raw, policy=policy.default))
            await self._transport.deliver(message)
        except PermanentMailError as exc:
            await self._give_up(mail, str(exc))
        except Exception as exc:
            # TransientMailError, or a transport bug: either way the message deserves its retries.
            if not isinstance(exc, TransientMailError):
                log.exception("unexpected error delivering mail to %s (%s)", mail.to, mail.template)
            await self._failed(mail, str(exc) or type(exc).__name__)
        else:
            await self._queue.remove(mail.id)
            log.info("mail to %s (%s) delivered via %s", mail.to, mail.template, self._transport)

    async def _failed(self, mail: QueuedMail, reason: str) -> None:
        attempts = mail.attempts + 1
        if attempts >= self._max_attempts:
            await self._give_up(mail, f"{attempts} attempts failed, the last with: {reason}")
            return
        delay = self._retry_delay * 2 ** (attempts - 1)
        log.warning(
            "mail to %s (%s) failed (attempt %d of %d), retrying in %g s: %s",
            *(mail.to, mail.template, attempts, self._max_attempts, delay, reason),
        )
        await self._queue.retry(replace(mail, attempts=attempts), self._clock() + delay)

    async def _give_up(self, mail: QueuedMail, reason: str) -> None:
        log.error("giving up on mail to %s (%s): %s", mail.to, mail.template, reason)
        await self._queue.remove(mail.id)
