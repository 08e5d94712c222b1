"""Restarting the service under load loses no accepted write (issue 8, "Faults").

``authz serve`` runs as a real process (two workers, its own process group) on the test's database and the
machine's Redis.  A load driver keeps three kinds of writes in flight over HTTP: sign-ups, permissions added
through the admin API, and API keys created with a TOTP code.  While they run, the service is stopped and
started again on the same port, either gracefully (SIGTERM to the serving process, as an orchestrator does)
or by a crash (SIGKILL to the whole process group).

A write answered 2xx was committed before the answer, so neither kind of stop may lose it: every accepted
write is read back from SQL afterwards, whole (a sign-up's account with its activity, a permission with its
admin activity), and the restarted service's policy applies every accepted permission.  Requests that fail
while it is down (refused connections, cut connections, 503) are not accepted; none may be a 500.

A graceful stop also answers every request sent before the SIGTERM, among them a sign-up the service was
handling when the signal came (its ``100 Continue`` received).  What it cannot save is a request whose body is
still on its way then: once shutting down, aiohttp ignores whatever a connection receives, so such a handler
waits for its body until the shutdown timeout (5 s) and the connection is closed unanswered.  Nothing of it is
written; the client sees a cut connection and may retry.

Deadlines are generous bounds for a loaded machine, not speed targets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pyotp
import pytest
from sqlalchemy import select

from authz.services import Services
from authz.settings import async_database_url, load_settings
from identity.db import activities, api_keys, create_engine, permissions, users
from identity.login import otp_context
from identity.passwords import hash_password
from identity.totp import STEP
from tests.authz.helpers import drop_redis_namespace, free_port, signing_key_pem
from tests.authz.test_serve import clean_environ, cli
from tests.identity.helpers import cheap_argon2

AUTHZ = Path(sys.executable).with_name("authz")
UA = "Mozilla/5.0 (X11; Linux x86_64) RestartTests"
PASSWORD = "Secret-Passw0rd"
SIGN_UP_PASSWORD = "Correct-Horse-Battery-9"
USERS = "/api/v2/barong/identity/users"
SESSIONS = "/api/v2/barong/identity/sessions"
PERMISSIONS = "/api/v2/barong/admin/permissions"
API_KEYS = "/api/v2/barong/resource/api_keys"
KINDS = ("sign-up", "permission", "api-key")
KEY_HOLDERS = 8  # members with 2FA: each TOTP step counts once per user, so keys are spread over several
PER_PHASE = 3  # accepted writes of each kind wanted before the stop, and again after the restart
DEADLINE = 30.0  # seconds; start-up, a phase of load, a graceful stop


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)  # the accounts made with the command; the service hashes at full cost


# --- the service as a process group of its own ---------------------------------------------------------


@dataclass
class ServeGroup:
    """``authz serve --workers 2`` in its own session: SIGKILL to the group takes the workers along."""

    environ: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(AUTHZ), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2"],
                env=self.environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, http: aiohttp.ClientSession) -> float:
        """Poll ``/readyz`` until it answers 200; returns the monotonic time it did."""
        assert self.process is not None
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"authz serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(f"{self.base}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as reply:
                    if reply.status == 200:
                        return time.monotonic()
            await asyncio.sleep(0.05)
        pytest.fail(f"authz serve not ready after {DEADLINE} s:\n{self.log.read_text()}")

    def signal(self, signum: int) -> None:
        """A signal to the serving process only (it passes SIGTERM on to its workers)."""
        assert self.process is not None
        self.process.send_signal(signum)

    async def crash(self) -> None:
        """SIGKILL to every process of the group at once, as a machine or container dies."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, DEADLINE)
        await until(lambda: not self.group_alive())

    def group_alive(self) -> bool:
        """Whether a process of the group still runs (zombies left for init to reap do not count)."""
        assert self.process is not None
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
                if int(group) == self.process.pid and state != "Z":
                    return True
        return False

    def kill(self) -> None:
        """Whatever is left of this group (never anything else); for the teardown."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


async def until(condition: Callable[[], bool], within: float = DEADLINE) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# --- accounts and settings, made before the service starts --------------------------------------------


@dataclass
class KeyHolder:
    """A member with 2FA; ``last_step`` is the last TOTP step it may have used (each counts once)."""

    uid: str
    email: str
    secret: str
    last_step: int = 0
    jwt: str = ""
    cookie: str = ""

    def next_code(self) -> tuple[int, str] | None:
        """A code for a step not used yet that the service accepts now (±1 step), if any is left."""
        current = int(time.time() // STEP)
        step = max(self.last_step + 1, current - 1)
        if step > current + 1:
            return None
        return step, pyotp.TOTP(self.secret).at(step * STEP)


@dataclass
class Accounts:
    admin_email: str
    holders: list[KeyHolder]


@pytest.fixture
def environ(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[dict[str, str]]:
    """The service's settings (also the command's): the test's database, a fresh Redis namespace."""
    namespace = f"restart{uuid.uuid4().hex[:10]}"
    yield {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AUTHZ_REDIS_NAMESPACE": namespace,
        "AUTHZ_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "AUTHZ_JWT_PRIVATE_KEY": signing_key_pem(),
        "AUTHZ_SESSION_COOKIE_SECURE": "false",
        "AUTHZ_FIRST_REGISTRATION_SUPERADMIN": "false",
        "AUTHZ_LOGIN_MAX_ATTEMPTS_IP": "1000",
        "AUTHZ_MAIL_MAX_REQUESTS_IP": "1000000",  # every sign-up comes from 127.0.0.1 and is mailed
        "AUTHZ_LOG_LEVEL": "warning",
    }
    drop_redis_namespace(redis_url, namespace)


@pytest.fixture
def accounts(environ: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Accounts:
    """A superadmin made with ``authz users create``, as an operator would, and members with 2FA (made
    through the repository: the command migrates on every run, ~0.3 s each)."""
    admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    argv = ("users", "create", "--email", admin_email, "--password", PASSWORD, "--role", "superadmin")
    code, _ = cli(monkeypatch, tmp_path / "cli", *argv, "--state", "active", **environ)
    assert code == 0

    async def members_with_2fa() -> list[KeyHolder]:
        settings = load_settings(env={**environ, "AUTHZ_DATA_DIR": str(tmp_path / "cli")})
        services = Services.open(settings, environ["REDIS_URL"])
        holders = []
        try:
            for index in range(KEY_HOLDERS):
                email, secret = f"holder{index}-{uuid.uuid4().hex[:8]}@example.com", pyotp.random_base32()
                user = await services.users.create(
                    email=email, password_digest=hash_password(PASSWORD), role="member", state="active"
                )
                encrypted = services.box.encrypt(secret, context=otp_context(user.uid))
                await services.users.update(user.uid, otp=True, otp_secret_encrypted=encrypted)
                holders.append(KeyHolder(user.uid, email, secret))
        finally:
            await services.close()
        return holders

    return Accounts(admin_email, asyncio.run(members_with_2fa()))


@pytest.fixture
def serve(environ: dict[str, str], tmp_path: Path) -> Iterator[ServeGroup]:
    group = ServeGroup(
        clean_environ(AUTHZ_DATA_DIR=str(tmp_path / "serve"), **environ), log=tmp_path / "serve.log"
    )
    try:
        yield group
    finally:
        group.kill()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=DEADLINE)
    ) as session:
        yield session


async def log_in(http: aiohttp.ClientSession, base: str, email: str, **extra: str) -> str:
    """The ``Cookie`` header of a new session."""
    body = {"email": email, "password": PASSWORD, **extra}
    async with http.post(f"{base}{SESSIONS}", json=body, headers={"User-Agent": UA}) as reply:
        assert reply.status == 200, await reply.text()
        return f"_barong_session={reply.cookies['_barong_session'].value}"


async def upstream_jwt(http: aiohttp.ClientSession, base: str, cookie: str, path: str) -> str:
    """The bearer JWT the decision endpoint mints for the session (what a gateway adds upstream)."""
    async with http.get(f"{base}/api/v2/auth/{path}", headers={"Cookie": cookie, "User-Agent": UA}) as reply:
        assert reply.status == 200, await reply.text()
        return reply.headers["Authorization"]


# --- the load ------------------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One request of the load: when it was sent and answered (monotonic), and how."""

    kind: str
    ident: str
    sent: float
    done: float
    status: int | None  # None: no HTTP answer
    error: str = ""


@dataclass
class Load:
    """Writers of each kind, recording every attempt; ``accepted[kind]`` maps an identity to its answer."""

    http: aiohttp.ClientSession
    base: str
    admin_jwt: str
    holders: list[KeyHolder]
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    attempts: list[Attempt] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    stopping: bool = False
    phase: float = 0.0  # when the current phase began (monotonic)

    def accepted_since(self, kind: str, since: float) -> int:
        return sum(
            1
            for a in self.attempts
            if a.kind == kind and a.status is not None and a.status < 300 and a.sent >= since
        )

    async def send(
        self, kind: str, ident: str, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> Attempt:
        """One request, recorded; a 2xx answer's JSON is kept in :attr:`accepted`."""
        attempt = Attempt(kind, ident, time.monotonic(), 0.0, None)
        self.attempts.append(attempt)
        try:
            async with self.http.request(
                method, f"{self.base}{path}", json=body, headers={"User-Agent": UA, **headers}
            ) as reply:
                payload = await reply.read()
                attempt.status = reply.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            attempt.error = type(exc).__name__
        attempt.done = time.monotonic()
        if attempt.status is not None and 200 <= attempt.status < 300:
            self.accepted[kind][ident] = orjson.loads(payload)
            return attempt
        if attempt.status is not None and attempt.status != 503:
            attempt.error = payload.decode(errors="replace")[:200]
        await asyncio.sleep(0.1)  # down or refusing: back off a little, then go on
        return attempt

    async def sign_ups(self, worker: int) -> None:
        for n in itertools.count():
            if self.stopping:
                return
            email = f"su-{self.tag}-{worker}-{n}@example.com"
            await self.send(
                "sign-up", email, "POST", USERS, {"email": email, "password": SIGN_UP_PASSWORD}, {}
            )

    async def permissions(self) -> None:
        while not self.stopping:
            path = f"api/v2/restart/{self.tag}/{uuid.uuid4().hex[:12]}"
            body = {"role": "member", "verb": "GET", "path": path, "action": "accept"}
            await self.send("permission", path, "POST", PERMISSIONS, body, {"Authorization": self.admin_jwt})
            await asyncio.sleep(0.05)

    async def api_keys(self) -> None:
        while not self.stopping:
            for holder in self.holders:
                if self.stopping or (code := holder.next_code()) is None:
                    continue
                step, totp = code
                ident = f"{holder.uid}:{step}"
                attempt = await self.send(
                    "api-key",
                    ident,
                    "POST",
                    API_KEYS,
                    {"algorithm": "HS256", "totp_code": totp},
                    {"Authorization": holder.jwt},
                )
                if attempt.error != "ClientConnectorError":
                    holder.last_step = step  # it may have counted, unless the connection never opened
                # Each TOTP step counts once per holder: once the phase has its keys, go on slowly (but keep
                # knocking while the service is away).
                enough = (
                    attempt.status is not None and self.accepted_since("api-key", self.phase) >= PER_PHASE
                )
                await asyncio.sleep(1.0 if enough else 0.1)
            await asyncio.sleep(0.02)

    def run(self) -> list[asyncio.Task[None]]:
        writers: list[Awaitable[None]] = [self.sign_ups(i) for i in range(2)]
        writers += [self.permissions(), self.api_keys()]
        return [asyncio.create_task(writer) for writer in writers]

    async def until_accepted(self, since: float, serve: ServeGroup) -> None:
        """Until every kind has :data:`PER_PHASE` writes sent after ``since`` and accepted."""
        deadline = time.monotonic() + DEADLINE
        while not all(self.accepted_since(kind, since) >= PER_PHASE for kind in KINDS):
            assert time.monotonic() < deadline, (
                f"load stalled: {self.summary()}\n{serve.log.read_text()[-4000:]}"
            )
            await asyncio.sleep(0.05)

    def summary(self) -> dict[str, Counter[str]]:
        return {
            kind: Counter(str(a.status or a.error) for a in self.attempts if a.kind == kind) for kind in KINDS
        }


# --- what SQL holds afterwards -------------------------------------------------------------------------


async def read_back(database_url: str, tag: str) -> dict[str, Any]:
    """Everything the load wrote, read directly from the database."""
    engine = create_engine(async_database_url(database_url))
    try:
        async with engine.connect() as conn:
            signed_up = {
                row.email: row
                for row in await conn.execute(select(users).where(users.c.email.like(f"su-{tag}-%")))
            }
            granted = {
                row.path: row
                for row in await conn.execute(
                    select(permissions).where(permissions.c.path.like(f"api/v2/restart/{tag}/%"))
                )
            }
            keys = {row.kid: row for row in await conn.execute(select(api_keys))}
            user_ids = {row.uid: row.id for row in await conn.execute(select(users.c.uid, users.c.id))}
            user_activities = (
                (
                    await conn.execute(
                        select(activities.c.user_id).where(
                            activities.c.topic == "account", activities.c.action == "signup"
                        )
                    )
                )
                .scalars()
                .all()
            )
            admin_activities = (
                (
                    await conn.execute(
                        select(activities.c.data).where(
                            activities.c.category == "admin",
                            activities.c.topic == "permissions",
                            activities.c.action == "create",
                        )
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    return {
        "users": signed_up,
        "permissions": granted,
        "api_keys": keys,
        "user_ids": user_ids,
        "signup_activities": Counter(user_activities),
        "permission_activities": Counter(orjson.loads(data)["after"]["id"] for data in admin_activities),
    }


# --- the test -----------------------------------------------------------------------------------------


async def held_sign_up(port: int, email: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A sign-up the service is handling: its headers sent with ``Expect: 100-continue``, ``100 Continue``
    received (the handler has started), then its body sent.  Returns the connection, to read the answer."""
    body = orjson.dumps({"email": email, "password": SIGN_UP_PASSWORD})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {USERS} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {UA}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    await writer.drain()
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
    assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
    writer.write(body)
    await writer.drain()
    return reader, writer


@dataclass
class Restart:
    """One stop and start of the service while the load ran (monotonic times)."""

    stop: str
    stopped: float = 0.0
    ready: float = 0.0
    held: bytes = b""  # the answer to the sign-up being handled when SIGTERM came


async def restart(serve: ServeGroup, load: Load, http: aiohttp.ClientSession, stop: str) -> Restart:
    """Stop the service (``sigterm``: gracefully; ``sigkill``: the whole group) and start it again on the same
    port while the load goes on; returns once every kind of write is accepted again."""
    done = Restart(stop)
    if stop == "sigterm":
        reader, writer = await held_sign_up(serve.port, f"su-{load.tag}-held@example.com")
        done.stopped = time.monotonic()
        serve.signal(signal.SIGTERM)
        assert serve.process is not None
        done.held = await asyncio.wait_for(reader.read(), DEADLINE)
        writer.close()
        assert await asyncio.to_thread(serve.process.wait, DEADLINE) == 0
    else:
        done.stopped = time.monotonic()
        await serve.crash()
    down = time.monotonic()
    serve.launch()
    done.ready = load.phase = await serve.wait_ready(http)
    await load.until_accepted(done.ready, serve)
    print(f"{stop}: a {down - done.stopped:.2f} s stop, then {done.ready - down:.2f} s to be ready again")
    return done


def check_answers(load: Load, done: Restart, until: float) -> None:
    """What the load saw around one restart: no server error, writes through the outage, and after a
    graceful stop no request sent before it left unanswered."""
    around = [a for a in load.attempts if a.sent < until]
    failures = [a for a in around if a.status is not None and a.status >= 300 and a.status != 503]
    # A TOTP code may land on the wrong side of a step boundary or be used up by a cut request: a 422.
    wrong_code = [a for a in failures if a.kind == "api-key" and a.status == 422 and "totp" in a.error]
    assert [a for a in failures if a not in wrong_code] == []
    for kind in KINDS:
        assert any(done.stopped <= a.sent <= done.ready for a in around if a.kind == kind), kind
    cut = [a for a in around if a.status is None and a.error != "ClientConnectorError"]
    in_flight = [a for a in around if a.sent < done.stopped < a.done]
    print(f"{done.stop}: in flight at the stop", Counter((a.kind, a.status or a.error) for a in in_flight))
    if done.stop == "sigterm":
        # Sent after the signal, a request may find the connection closing (and is not accepted); sent before
        # it, it is answered.
        assert [a for a in cut if a.sent < done.stopped] == []
        # So is the one the service was handling when the signal came, and its account is kept.
        assert done.held.startswith(b"HTTP/1.1 201"), done.held[:300]
        load.accepted["sign-up"][f"su-{load.tag}-held@example.com"] = orjson.loads(
            done.held.split(b"\r\n\r\n")[1]
        )


@pytest.mark.parametrize(
    ("database_url", "stops"),
    [("postgresql", ("sigterm", "sigkill")), ("sqlite", ("sigkill",))],  # SQLite: what a crash leaves
    indirect=["database_url"],
    ids=["postgresql", "sqlite"],
)
async def test_no_accepted_write_is_lost_across_restarts_under_load(
    serve: ServeGroup,
    accounts: Accounts,
    http: aiohttp.ClientSession,
    database_url: str,
    stops: tuple[str, ...],
) -> None:
    serve.launch()
    await serve.wait_ready(http)
    admin_cookie = await log_in(http, serve.base, accounts.admin_email)
    admin_jwt = await upstream_jwt(http, serve.base, admin_cookie, PERMISSIONS.lstrip("/"))
    for holder in accounts.holders:
        step, code = holder.next_code() or pytest.fail("no TOTP step left")
        holder.cookie = await log_in(http, serve.base, holder.email, otp_code=code)
        holder.last_step = step
        holder.jwt = await upstream_jwt(http, serve.base, holder.cookie, API_KEYS.lstrip("/"))

    load = Load(http, serve.base, admin_jwt, accounts.holders)
    writers = load.run()
    restarts: list[Restart] = []
    try:
        await load.until_accepted(0.0, serve)
        for stop in stops:
            restarts.append(await restart(serve, load, http, stop))
    finally:
        load.stopping = True
        await asyncio.gather(*writers)
    print(load.summary())
    for done, following in zip(restarts, [*restarts[1:], None], strict=True):
        check_answers(load, done, until=following.stopped if following else float("inf"))
    assert "Traceback" not in serve.log.read_text()  # nothing failed out of sight either (shutdown, tasks)

    stored = await read_back(database_url, load.tag)
    # Every accepted sign-up is there, with the activity its transaction writes.
    assert sorted(set(load.accepted["sign-up"]) - set(stored["users"])) == []
    for email, answer in load.accepted["sign-up"].items():
        assert stored["users"][email].uid == answer["uid"]
    # Nothing half-written: every account the load made (answered or not) has exactly its sign-up activity.
    assert {email: stored["signup_activities"][row.id] for email, row in stored["users"].items()} == {
        email: 1 for email in stored["users"]
    }
    # Every accepted permission is there; every permission the load made is recorded by one admin activity.
    assert sorted(set(load.accepted["permission"]) - set(stored["permissions"])) == []
    for path, answer in load.accepted["permission"].items():
        assert stored["permissions"][path].id == answer["id"]
    assert {row.id: stored["permission_activities"][row.id] for row in stored["permissions"].values()} == {
        row.id: 1 for row in stored["permissions"].values()
    }
    # Every accepted API key is there, active, held by the user who asked for it.
    for ident, answer in load.accepted["api-key"].items():
        row = stored["api_keys"].get(answer["kid"])
        assert row is not None, ident
        holder_id = stored["user_ids"][ident.split(":")[0]]
        assert (row.state, row.key_holder_account_type, row.key_holder_account_id) == (
            "active",
            "User",
            holder_id,
        )

    # The restarted service applies every accepted permission (and nothing grants what was never added).
    headers = {"Cookie": accounts.holders[0].cookie, "User-Agent": UA}
    for path in [*load.accepted["permission"], f"api/v2/restart/{load.tag}/never-added"]:
        async with http.get(f"{serve.base}/api/v2/auth/{path}", headers=headers) as reply:
            expected = 200 if path in load.accepted["permission"] else 401
            assert reply.status == expected, (path, await reply.text())
