"""Helpers for the decision-endpoint tests: users, sessions, login, cookie and signed API-key headers, the
app, and a private ``redis-server`` to take away.

Users and sessions are mostly made through the real repositories (``services``) rather than through the
login endpoint, because hashing and verifying a password costs ~0.3 s each and these tests need many
sessions; :func:`login` goes through the endpoint where the test is about that flow.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import jwt
import redis as redis_sync
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from authz.app import build_app
from authz.services import Services
from authz.settings import Settings
from identity.models import ApiKey, User
from identity.passwords import hash_password

T = TypeVar("T")

UA = "Mozilla/5.0 (X11; Linux x86_64) DecisionTests"
#: In 81.2.69.0/24, which the test GeoIP database places in the United Kingdom (Europe).
UK_IP = "81.2.69.10"
DECIDE = "/api/v2/auth/"
PRIVATE_PATH = "api/v2/peatio/account/balances"  # member: ACCEPT ALL api/v2/peatio/account
DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


@lru_cache(maxsize=1)
def password_digest() -> str:
    """One argon2 hash for every test user (these tests never log in with the password)."""
    return hash_password("Secret-Passw0rd")


@lru_cache(maxsize=1)
def signing_key_pem() -> str:
    """One RSA key for every app these tests start (generating one per app costs ~0.1 s)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def fast_settings(settings: Settings) -> Settings:
    """``settings`` with the shared signing key (see :func:`signing_key_pem`)."""
    return replace(settings, jwt_private_key=signing_key_pem())


async def new_user(
    services: Services, *, role: str = "member", state: str = "active", otp: bool = False
) -> User:
    """A user created through the repository; ``otp=True`` marks 2FA as enabled (API keys need it)."""
    user = await services.users.create(
        email=f"u{uuid.uuid4().hex[:10]}@example.com",
        password_digest=password_digest(),
        role=role,
        state=state,
    )
    if otp:
        updated = await services.users.update(user.uid, otp=True)
        assert updated is not None
        user = updated
    return user


async def open_session(
    services: Services, user: User, clock: Callable[[], float], *, ip: str = UK_IP, user_agent: str = UA
) -> tuple[str, str]:
    """A live session as the login endpoint opens it; returns (cookie value, CSRF token)."""
    session_id, record = await services.sessions.create(user.uid, ip, user_agent, now=clock())
    return session_id, record.csrf_token


async def login(client: Any, account: Any, *, ip: str = UK_IP, user_agent: str = UA) -> tuple[str, str]:
    """Log ``account`` (a conftest ``make_user`` account) in through the endpoint: (cookie value, CSRF token)."""
    response = await client.post(
        "/api/v2/barong/identity/sessions",
        json={"email": account.user.email, "password": account.password},
        headers={"X-Forwarded-For": ip, "User-Agent": user_agent},
    )
    assert response.status == 200, await response.text()
    cookie = response.cookies["_barong_session"].value
    client.session.cookie_jar.clear()  # the tests send cookies explicitly
    return cookie, (await response.json())["csrf_token"]


def cookie_headers(
    cookie: str | None, *, ip: str = UK_IP, user_agent: str | None = UA, csrf: str | None = None, **extra: str
) -> dict[str, str]:
    headers = {"X-Forwarded-For": ip, **extra}
    if cookie is not None:
        headers["Cookie"] = f"_barong_session={cookie}"
    if user_agent is not None:
        headers["User-Agent"] = user_agent
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return headers


def sign(secret: str, algorithm: str, nonce: str, kid: str) -> str:
    """hex(HMAC-SHA<n>(secret, nonce + kid)), as API-key clients compute it."""
    return hmac.new(secret.encode(), (nonce + kid).encode(), DIGESTS[algorithm]).hexdigest()


def now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


def api_key_headers(
    key: ApiKey,
    nonce: int | str,
    *,
    ip: str = UK_IP,
    user_agent: str = UA,
    signature: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """Signed ``X-Auth-*`` headers for ``key`` (``signature`` overrides the correct one)."""
    nonce = str(nonce)
    return {
        "X-Auth-Apikey": key.kid,
        "X-Auth-Nonce": nonce,
        "X-Auth-Signature": sign(key.secret, key.algorithm, nonce, key.kid)
        if signature is None
        else signature,
        "X-Forwarded-For": ip,
        "User-Agent": user_agent,
        **extra,
    }


async def start_client(
    aiohttp_client: Any, settings: Settings, clock: Callable[[], float], **overrides: Any
) -> Any:
    """A test client of the whole app built from ``settings`` with ``overrides`` (policies loaded at start)."""
    app_settings = replace(settings, **overrides)
    return await aiohttp_client(build_app(app_settings, app_settings.redis_url, clock=clock))


async def decide(
    client: Any, method: str, path: str, headers: Mapping[str, str] | None = None, **kw: Any
) -> tuple[int, Any, Any]:
    """Ask the decision endpoint about ``method path``; returns (status, JSON body or None, headers)."""
    response = await client.request(method, DECIDE + path, headers=headers or {}, **kw)
    body = await response.read()
    return response.status, (await response.json() if body else None), response.headers


def error(key: str) -> dict[str, list[str]]:
    return {"errors": [key]}


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, within: float = 1.0
) -> T:
    """Call ``probe`` until ``accept`` holds for its result or ``within`` seconds pass; returns the last result."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if accept(result) or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(0.02)


async def bearer_claims(client: Any, authorization: str, **options: Any) -> dict[str, Any]:
    """Verify ``Bearer <jwt>`` with pyjwt against the app's ``/.well-known/jwks.json``; returns its claims."""
    scheme, token = authorization.split(" ")
    assert scheme == "Bearer"
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(token)["kid"]
    (jwk,) = [key for key in jwks["keys"] if key["kid"] == kid]
    audience = options.pop("audience", "peatio")
    issuer = options.pop("issuer", "barong")
    return jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=audience, issuer=issuer, **options
    )


async def admin_activities(services: Services, count: int, *, within: float = 2.0) -> list[Any]:
    """The admin activities once at least ``count`` are in SQL (the recorder writes asynchronously)."""
    return await eventually(
        lambda: services.activities.list(category="admin"), lambda found: len(found) >= count, within=within
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _redis_server_binary() -> str:
    return shutil.which("redis-server") or str(Path(sys.executable).parent / "redis-server")


class RedisProcess:
    """A private ``redis-server`` on a fixed port that the test can kill and start again.

    Without ``data_dir`` it keeps nothing on disk; with it, every write is appended and fsynced to an AOF
    in ``data_dir`` before it is acknowledged, so a server killed with SIGKILL and started again on the
    same directory comes back with all of it (what a production Redis with ``appendfsync always`` does).
    """

    def __init__(self, port: int, data_dir: Path | None = None) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        command = [_redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        if self.data_dir is None:
            command += ["--appendonly", "no"]
        else:
            command += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir)]
        # Popen returns at once; readiness is awaited below without blocking the loop.
        self._process = subprocess.Popen(  # noqa: ASYNC220
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(250):
            if await self._answers():
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    async def _answers(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return (await reader.readline()).startswith(b"+PONG")
        finally:
            writer.close()

    def pause(self) -> None:
        """Freeze the server: connections stay open, nothing is answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


def announcer(client: Any) -> Any:
    """The change publisher of the app under test: like any write of that instance, a change announced
    through it is applied to the instance's caches before it is published (no pub/sub round trip)."""
    from authz.app import SERVICES

    return client.server.app[SERVICES].changes


def drop_redis_namespace(redis_url: str, namespace: str) -> None:
    """Delete every key of a test's Redis namespace (never FLUSHDB: concurrent runs share the DB)."""
    client = redis_sync.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
