"""Storage outages of the whole app (issue 8, "Faults"), on real servers and over HTTP.

* Redis killed (SIGKILL) mid-run and started again on its own data: the decision endpoint answers
  ``503 authz.unavailable`` and never ``200`` while it is away, then decides again with no app restart,
  for a session opened before the outage (Redis persisted it).
* PostgreSQL cut mid-run (a TCP forwarder between the app and the server, ``tests/faults.py``): identity
  writes answer 503 and leave nothing behind, a cookie session already in the caches is still decided, and
  ``/readyz`` says the database is down.

Deadlines are generous bounds for a loaded machine ("eventually within N s"), not speed targets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from authz.app import SERVICES, build_app
from identity.models import Permission
from tests.authz.helpers import RedisProcess, free_port
from tests.faults import TcpProxy
from tests.identity.helpers import PROTECTED, browser, cheap_argon2, login, with_cookie

T = TypeVar("T")
UNAVAILABLE = (503, {"errors": ["authz.unavailable"]})
USERS = "/api/v2/barong/identity/users"
PERMISSIONS = "/api/v2/barong/admin/permissions"
DEADLINE = 10.0  # seconds; an outage must be noticed (and a recovery seen) well within it


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


async def until(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], within: float = DEADLINE
) -> T:
    """``probe`` until ``accept`` holds or ``within`` seconds pass (then the last result, for the assert)."""
    deadline = time.monotonic() + within
    while not accept(result := await probe()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return result


async def decision(client: Any, cookie: str) -> tuple[int, Any]:
    response = await client.get(PROTECTED, headers=with_cookie(cookie))
    body = await response.read()
    return response.status, (await response.json() if body else None)


# --- Redis ------------------------------------------------------------------------------------------


@pytest.fixture
async def persistent_redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    """A private redis-server with an fsynced AOF in a temporary directory; always killed afterwards."""
    (data := tmp_path / "redis").mkdir()
    server = RedisProcess(free_port(), data_dir=data)
    await server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
async def test_killed_redis_fails_closed_and_a_persisted_session_works_after_its_restart(
    aiohttp_client: Any, settings: Any, make_user: Any, clock: Any, persistent_redis: RedisProcess
) -> None:
    on_private = dataclasses.replace(settings, redis_url=persistent_redis.url, redis_timeout=0.5)
    client = await aiohttp_client(build_app(on_private, on_private.redis_url, clock=clock))
    cookie, _ = await login(client, await make_user())
    assert (await decision(client, cookie))[0] == 200

    persistent_redis.kill()
    # A decision racing the kill may still come from the in-process caches; once the change listener has
    # lost Redis they are bypassed and every decision is refused.
    assert await until(lambda: decision(client, cookie), lambda got: got[0] != 200) == UNAVAILABLE
    for _ in range(5):
        assert await asyncio.wait_for(decision(client, cookie), timeout=DEADLINE) == UNAVAILABLE
    ready = await (await client.get("/readyz")).json()
    assert ready["checks"]["redis"].startswith("unavailable")

    await persistent_redis.start()
    # The same app, the session opened before the outage: Redis kept it on disk.
    assert await until(lambda: decision(client, cookie), lambda got: got[0] == 200) == (200, None)
    assert (await until(lambda: client.get("/readyz"), lambda response: response.status == 200)).status == 200


# --- PostgreSQL -------------------------------------------------------------------------------------


@pytest.fixture
async def pg_proxy(postgres_ready: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    target = urlsplit(postgres_ready)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    try:
        yield proxy, postgres_ready.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    finally:
        await proxy.stop()


NEW_PERMISSION = {"role": "member", "verb": "GET", "path": "api/v2/peatio/outage", "action": "accept"}


async def sign_up(client: Any, email: str) -> Any:
    client.session.cookie_jar.clear()  # see the test: no cookie of another session rides along
    return await client.post(
        USERS, json={"email": email, "password": "Correct-Horse-Battery-9"}, headers=browser()
    )


def is_new(permission: Permission) -> bool:
    return permission.path == NEW_PERMISSION["path"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_unreachable_postgresql_refuses_writes_whole_and_keeps_deciding_cached_sessions(
    aiohttp_client: Any, settings: Any, services: Any, make_user: Any, clock: Any, pg_proxy: Any
) -> None:
    proxy, proxied_url = pg_proxy
    proxied = dataclasses.replace(settings, database_url=proxied_url, database_timeout=1.0)
    client = await aiohttp_client(build_app(proxied, proxied.redis_url, clock=clock))
    # Cookies are sent explicitly: a login or sign-up that carried another's cookie from the jar would open its
    # session in place of that one, ending it (and the JWTs minted for it).
    member_cookie, _ = await login(client, await make_user())
    client.session.cookie_jar.clear()
    admin_cookie, _ = await login(client, await make_user(role="superadmin"))
    client.session.cookie_jar.clear()
    assert (await decision(client, member_cookie))[0] == 200
    admin_jwt = (await client.get(f"/api/v2/auth{PERMISSIONS}", headers=with_cookie(admin_cookie))).headers
    admin = browser(Authorization=admin_jwt["Authorization"])
    email = "outage-signup@example.com"
    permissions_before = await services.permissions.list_all()
    users_before = await services.users.count()

    await proxy.stop()
    signup = await sign_up(client, email)
    assert signup.status == 503, await signup.text()
    assert await signup.json() == {"errors": ["identity.unavailable"]}
    added = await client.post(PERMISSIONS, json=NEW_PERMISSION, headers=admin)
    assert added.status == 503, await added.text()
    assert await added.json() == {"errors": ["identity.unavailable"]}
    # The member is in the in-memory snapshot and the session in Redis: still decided, no SQL needed.
    for _ in range(3):
        assert (await decision(client, member_cookie))[0] == 200
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"]["database"].startswith("unavailable")

    await proxy.start()
    # Nothing of the refused writes reached the database (read directly, not through the forwarder) ...
    assert await services.users.get_by_email(email) is None
    assert await services.permissions.list_all() == permissions_before
    assert await services.users.count() == users_before
    # ... and nothing half-written blocks doing them again once it is back.
    signup = await until(lambda: sign_up(client, email), lambda response: response.status != 503)
    assert signup.status == 201, await signup.text()
    added = await client.post(PERMISSIONS, json=NEW_PERMISSION, headers=admin)
    assert added.status == 201, await added.text()
    assert [p.path for p in await services.permissions.list_all() if is_new(p)] == [NEW_PERMISSION["path"]]
    assert (await client.get("/readyz")).status == 200


@pytest.mark.parametrize("first", [True, False], ids=["first-account", "member"])
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_sign_up_cut_off_after_its_first_write_leaves_no_account_behind(
    aiohttp_client: Any,
    settings: Any,
    services: Any,
    make_user: Any,
    clock: Any,
    pg_proxy: Any,
    monkeypatch: pytest.MonkeyPatch,
    first: bool,
) -> None:
    proxy, proxied_url = pg_proxy
    proxied = dataclasses.replace(settings, database_url=proxied_url, database_timeout=1.0)
    client = await aiohttp_client(build_app(proxied, proxied.redis_url, clock=clock))
    if not first:
        await make_user()
    users = client.server.app[SERVICES].users
    insert = users.create_in

    async def insert_then_lose_the_database(*args: Any, **kwargs: Any) -> Any:
        created = await insert(*args, **kwargs)
        await proxy.stop()  # the server goes away between the account's row and the rest of the sign-up
        return created

    monkeypatch.setattr(users, "create_in", insert_then_lose_the_database)
    email = "cut-off@example.com"
    response = await sign_up(client, email)
    assert response.status == 503, await response.text()
    await proxy.start()
    monkeypatch.setattr(users, "create_in", insert)

    assert await services.users.get_by_email(email) is None
    response = await until(lambda: sign_up(client, email), lambda response: response.status != 503)
    assert response.status == 201, await response.text()
    assert (await response.json())["role"] == ("superadmin" if first else "member")
