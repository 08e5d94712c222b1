"""The mail subsystem against a real SMTP server (aiosmtpd) and the machine's Redis.

Time is driven with the ``clock`` fixture and :meth:`Mailer.deliver_due`; only the worker-loop tests run
in real time, for well under a second each.
"""

from __future__ import annotations

import asyncio
import email
import html
import logging
import stat
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from jinja2 import UndefinedError
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from identity.mail import (
    Mailer,
    MailTemplates,
    OutboxTransport,
    RedisMailQueue,
    SmtpTransport,
    transport_for,
)
from tests.faults import TcpProxy, free_port

if TYPE_CHECKING:
    from tests.conftest import FakeClock

LINK = "https://exchange.example/accounts/confirmation?confirmation_token=Tok3n-5ecret"
CONTEXTS: dict[str, dict[str, Any]] = {
    "email_confirmation": {"link": LINK, "expires_hours": 24},
    "password_reset": {"link": LINK, "expires_hours": 2},
    "password_changed": {},
    "new_login": {
        "ip": "81.2.69.10",
        "user_agent": "Firefox/128",
        "country": "United Kingdom",
        "time": "2024-05-01T12:00:00Z",
    },
}
BASE = {"app_name": "Barong", "email": "alice@example.com"}
SENDER = "Barong <noreply@barong.test>"


def render(template: str, language: str | None, **extra: Any) -> tuple[str, str, str]:
    return MailTemplates().render(template, language, {**BASE, **CONTEXTS[template], **extra})


@pytest.mark.parametrize("template", sorted(CONTEXTS))
def test_every_template_renders_in_english_and_russian(template: str) -> None:
    english, russian = render(template, "en"), render(template, "ru")
    for subject, text, body in (english, russian):
        assert "Barong" in subject and "\n" not in subject
        assert "alice@example.com" in text and "alice@example.com" in body
        assert body.lstrip().startswith("<!DOCTYPE html>")
        for value in CONTEXTS[template].values():
            assert str(value) in text and html.escape(str(value)) in body
    assert any("а" <= ch <= "я" for ch in russian[0]) and english[0].isascii()
    assert '<html lang="ru">' in russian[2] and '<html lang="en">' in english[2]


FALLBACKS = [(None, "en"), ("de", "en"), ("../ru", "en"), ("RU", "ru"), ("ru-RU", "ru"), ("en_GB", "en")]


@pytest.mark.parametrize(("language", "expected"), FALLBACKS)
def test_language_falls_back_to_english(language: str | None, expected: str) -> None:
    assert MailTemplates().language_for("password_changed", language) == expected
    assert render("password_changed", language) == render("password_changed", expected)


def test_html_part_escapes_a_hostile_user_agent() -> None:
    _, text, body = render("new_login", "en", user_agent='<script>alert("x")</script>', country=None)
    assert "<script>" not in body and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body
    assert '<script>alert("x")</script>' in text  # plain text is not HTML: shown as sent
    assert "None" not in text and "None" not in body


@pytest.mark.parametrize(("template", "key"), [(t, k) for t, c in CONTEXTS.items() for k in [*c, *BASE]])
@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_missing_context_key_is_an_error(template: str, key: str, language: str) -> None:
    context = {**BASE, **CONTEXTS[template]}
    del context[key]
    with pytest.raises(UndefinedError):
        MailTemplates().render(template, language, context)


def test_an_unknown_template_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown mail template"):
        MailTemplates().render("welcome", "en", BASE)


@pytest.mark.parametrize(
    ("url", "tls", "expected"),
    [
        ("smtp://mail.example", "auto", "smtp://mail.example:25"),
        ("smtp://u%40x:p%3Aw@mail.example:2525", "starttls", "smtp://mail.example:2525"),
        ("smtps://mail.example", "auto", "smtps://mail.example:465"),
    ],
)
def test_smtp_url_gives_host_and_default_port_but_never_logs_the_password(
    url: str, tls: str, expected: str
) -> None:
    assert str(SmtpTransport(url, tls=tls)) == expected


BAD_SMTP = [("http://x", "auto"), ("smtp://", "auto"), ("smtp://x", "always"), ("smtp://x:port", "auto")]


@pytest.mark.parametrize(("url", "tls"), BAD_SMTP)
def test_a_bad_smtp_setting_is_refused(url: str, tls: str) -> None:
    with pytest.raises(ValueError):
        SmtpTransport(url, tls=tls)


class SmtpServer:
    """A real SMTP server (aiosmtpd) on a free port that records what it accepts; can refuse recipients."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.logins: list[tuple[str, str]] = []
        self.rcpt_reply: str | None = None
        self._controller: Controller | None = None

    def start(self) -> None:
        # No TLS: auth_require_tls=False lets the test see the credentials the mailer sends.
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, authenticator=self.login, auth_require_tls=False
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    def login(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def namespace(redis: Redis) -> AsyncIterator[str]:
    ns = f"t{uuid.uuid4().hex[:12]}"
    yield ns
    keys = [key async for key in redis.scan_iter(f"{ns}:*")]
    if keys:
        await redis.delete(*keys)


def make_mailer(
    redis: Redis, namespace: str, transport: Any, clock: Any = time.time, **options: Any
) -> Mailer:
    queue = RedisMailQueue(redis, namespace)
    return Mailer(queue, transport, MailTemplates(), sender=SENDER, app_name="Barong", clock=clock, **options)


async def send_confirmation(
    mailer: Mailer, to: str = "alice@example.com", language: str | None = None
) -> None:
    await mailer.send("email_confirmation", to, language, CONTEXTS["email_confirmation"])


async def test_sent_mail_is_queued_then_delivered_as_one_multipart_message(
    redis: Redis, namespace: str, smtp: SmtpServer, clock: FakeClock
) -> None:
    mailer = make_mailer(redis, namespace, SmtpTransport(smtp.url, tls="none"), clock)
    await send_confirmation(mailer, language="ru")
    assert smtp.messages == []  # send() only queues
    assert await redis.hlen(f"{namespace}:mail:messages") == 1
    assert await redis.zscore(f"{namespace}:mail:due", (await redis.zrange(f"{namespace}:mail:due", 0, 0))[0])

    assert await mailer.deliver_due() == 1
    [(mail_from, rcpts, message)] = smtp.messages
    assert (mail_from, rcpts) == ("noreply@barong.test", ["alice@example.com"])
    assert message["From"] == SENDER and message["To"] == "alice@example.com"
    assert message["Subject"] == "Подтвердите адрес электронной почты для Barong"
    assert message["Message-ID"].endswith("@barong.test>") and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    text, body = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and body is not None
    assert LINK in text.get_content() and LINK in body.get_content()
    assert text.get_content_charset() == "utf-8"
    assert await mailer.deliver_due() == 0
    assert await redis.exists(*(f"{namespace}:mail:{key}" for key in ("messages", "due", "leased"))) == 0


async def test_credentials_in_the_smtp_url_are_used_percent_decoded(
    redis: Redis, namespace: str, smtp: SmtpServer
) -> None:
    url = f"smtp://mailer%40barong:p%3Ass%2Fw0rd@127.0.0.1:{smtp.port}"
    transport = transport_for(url, Path("/nonexistent"), tls="auto", validate_certs=True, timeout=5)
    mailer = make_mailer(redis, namespace, transport)
    await send_confirmation(mailer)
    assert await mailer.deliver_due() == 1
    assert smtp.logins == [("mailer@barong", "p:ss/w0rd")]
    assert len(smtp.messages) == 1


async def test_a_transient_failure_is_retried_with_doubling_delays(
    redis: Redis, namespace: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    server = SmtpServer()  # not started: connection refused
    mailer = make_mailer(redis, namespace, SmtpTransport(server.url, timeout=2), clock, retry_delay=5.0)
    await send_confirmation(mailer)
    with caplog.at_level(logging.WARNING, logger="identity.mail"):
        assert await mailer.deliver_due() == 1
        clock.advance(4.9)
        assert await mailer.deliver_due() == 0
        clock.advance(0.1)
        assert await mailer.deliver_due() == 1  # second failure: next try 10 s later
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]
    assert "failed (attempt 2 of 8), retrying in 10 s: " in caplog.records[1].getMessage()
    assert "alice@example.com" in caplog.text and "Tok3n" not in caplog.text
    server.start()
    try:
        clock.advance(9.9)
        assert await mailer.deliver_due() == 0
        clock.advance(0.1)
        assert await mailer.deliver_due() == 1
        assert len(server.messages) == 1
    finally:
        server.stop()
    assert await mailer.deliver_due() == 0


async def test_a_refused_recipient_is_given_up_after_one_attempt(
    redis: Redis, namespace: str, smtp: SmtpServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.rcpt_reply = "550 5.1.1 No such user here"
    mailer = make_mailer(redis, namespace, SmtpTransport(smtp.url), clock)
    await send_confirmation(mailer, to="ghost@example.com")
    with caplog.at_level(logging.ERROR, logger="identity.mail"):
        assert await mailer.deliver_due() == 1
    [record] = caplog.records
    assert record.levelname == "ERROR"
    assert record.getMessage().startswith("giving up on mail to ghost@example.com (email_confirmation): ")
    assert "550" in record.getMessage() and "No such user" in record.getMessage()
    clock.advance(3600)
    assert await mailer.deliver_due() == 0
    assert smtp.messages == []


async def test_a_mail_is_given_up_when_its_attempts_are_exhausted(
    redis: Redis, namespace: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    transport = SmtpTransport(f"smtp://127.0.0.1:{free_port()}")
    mailer = make_mailer(redis, namespace, transport, clock, max_attempts=3, retry_delay=1.0)
    await send_confirmation(mailer)
    attempts = 0
    with caplog.at_level(logging.WARNING, logger="identity.mail"):
        for _ in range(10):
            attempts += await mailer.deliver_due()
            clock.advance(100)
    assert attempts == 3
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING", "ERROR"]
    assert caplog.records[-1].getMessage().startswith(
        "giving up on mail to alice@example.com (email_confirmation): 3 attempts failed"
    )
    assert await redis.hlen(f"{namespace}:mail:messages") == 0


async def test_without_smtp_mail_goes_to_the_outbox_as_eml_files(
    redis: Redis, namespace: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transport = transport_for("", tmp_path / "data", tls="auto", validate_certs=True, timeout=5)
    assert isinstance(transport, OutboxTransport)
    mailer = make_mailer(redis, namespace, transport)
    await send_confirmation(mailer)
    await mailer.send("password_changed", "bob@example.com", "ru", {})
    with caplog.at_level(logging.INFO, logger="identity.mail"):
        assert await mailer.deliver_due() == 2
    outbox = tmp_path / "data" / "outbox"
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    files = sorted(outbox.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]  # no temporary files left behind
    assert {f.name.split("-")[1] for f in files} == {"email_confirmation", "password_changed"}
    for path in files:
        assert str(path) in caplog.text
    confirmation = next(f for f in files if "email_confirmation" in f.name)
    message = email.message_from_bytes(confirmation.read_bytes(), policy=policy.default)
    assert message["To"] == "alice@example.com"
    plain = message.get_body(("plain",))
    assert plain is not None and LINK in plain.get_content()


async def test_send_with_redis_down_logs_and_returns(
    smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    dead = impatient_redis(f"redis://127.0.0.1:{free_port()}/0")
    mailer = make_mailer(dead, "unused", SmtpTransport(smtp.url))
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="identity.mail"):
        await send_confirmation(mailer)
    assert time.monotonic() - started < 1.0
    [record] = caplog.records
    assert "alice@example.com" in record.getMessage() and "email_confirmation" in record.getMessage()
    assert "Tok3n" not in caplog.text
    await dead.aclose()


async def test_run_returns_soon_after_stop(redis: Redis, namespace: str, smtp: SmtpServer) -> None:
    mailer = make_mailer(redis, namespace, SmtpTransport(smtp.url))
    worker = asyncio.create_task(mailer.run())
    await send_confirmation(mailer)
    await wait_for(lambda: len(smtp.messages) == 1)
    await asyncio.sleep(0.3)
    mailer.stop()
    await asyncio.wait_for(worker, 1.5)


async def test_two_workers_deliver_each_message_exactly_once(
    redis: Redis, namespace: str, smtp: SmtpServer
) -> None:
    workers = [make_mailer(redis, namespace, SmtpTransport(smtp.url)) for _ in range(2)]
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    recipients = {f"user{i}@example.com" for i in range(20)}
    for to in recipients:
        await send_confirmation(workers[0], to=to)
    await wait_for(lambda: len(smtp.messages) >= 20)
    await asyncio.sleep(0.4)  # room for a duplicate to show up
    for worker in workers:
        worker.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 1.5)
    assert sorted(rcpts[0] for _, rcpts, _ in smtp.messages) == sorted(recipients)


async def test_a_mail_leased_by_a_dead_worker_is_delivered_after_the_lease(
    redis: Redis, namespace: str, smtp: SmtpServer, clock: FakeClock
) -> None:
    mailer = make_mailer(redis, namespace, SmtpTransport(smtp.url), clock)
    await send_confirmation(mailer)
    crashed = RedisMailQueue(redis, namespace, lease=60)
    assert await crashed.claim(clock()) is not None  # ...and its process dies here
    assert await mailer.deliver_due() == 0
    clock.advance(60)
    assert await mailer.deliver_due() == 1
    assert len(smtp.messages) == 1


async def test_an_undecodable_queue_entry_is_dropped_and_the_next_delivered(
    redis: Redis, namespace: str, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    await redis.hset(f"{namespace}:mail:messages", "junk", "{not json")
    await redis.zadd(f"{namespace}:mail:due", {"junk": 0})
    mailer = make_mailer(redis, namespace, SmtpTransport(smtp.url))
    await send_confirmation(mailer)
    with caplog.at_level(logging.ERROR, logger="identity.mail"):
        assert await mailer.deliver_due() == 1
    assert "undecodable mail queue entry junk" in caplog.text
    assert len(smtp.messages) == 1
    assert await redis.hlen(f"{namespace}:mail:messages") == 0


async def test_the_worker_rides_out_a_redis_outage(
    redis_url: str, namespace: str, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = redis_url.split("//")[1].split("/")[0].split(":")
    proxy = await TcpProxy(host, int(port)).start()
    client = impatient_redis(f"redis://127.0.0.1:{proxy.port}/{redis_url.rsplit('/', 1)[1]}")
    mailer = make_mailer(client, namespace, SmtpTransport(smtp.url))
    worker = asyncio.create_task(mailer.run())
    try:
        with caplog.at_level(logging.WARNING, logger="identity.mail"):
            await asyncio.sleep(0.1)
            await proxy.stop()
            await asyncio.sleep(0.6)
            await proxy.start()
            await send_confirmation(mailer)
            await wait_for(lambda: len(smtp.messages) == 1, timeout=3.0)
        assert "mail queue unavailable" in caplog.text
        assert not worker.done()
    finally:
        mailer.stop()
        await asyncio.wait_for(worker, 1.5)
        await proxy.stop()
        await client.aclose()


def impatient_redis(url: str) -> Redis:
    """A client that fails at once when Redis is unreachable (no retries, short timeouts)."""
    timeouts = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    return Redis.from_url(url, retry=Retry(NoBackoff(), 0), decode_responses=True, **timeouts)


async def wait_for(condition: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)
