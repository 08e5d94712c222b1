"""Concurrent writers on two running instances sharing the database and Redis (issue 8, Faults).

Sliding-expiry refreshes racing each other and a logout, simultaneous logins of one account, failed logins
racing the throttle, and permission edits made at once through both instances' admin API: every answer is
the one the rules give (no 5xx), no write is lost or undone by a late writer, and both instances end up
deciding from the policy the database holds.  Everything goes over HTTP through the real apps; the test
clock is shared, so the instances agree on "now".
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from authz.authorizer import CompiledPermissions, build_permission_enforcer
from authz.http.state import STATE
from identity.sessions import session_hash
from tests.admin.conftest import ADMIN
from tests.authz import test_outages
from tests.authz.helpers import (
    PRIVATE_PATH,
    UK_IP,
    cookie_headers,
    decide,
    eventually,
    login,
    new_user,
    open_session,
)
from tests.identity.helpers import cheap_argon2
from tests.resource.helpers import bearer, jwt_for

LOGIN = "/api/v2/barong/identity/sessions"
PERMISSIONS = f"{ADMIN}/permissions"
#: A step of the test clock larger than the slide interval (60 s): every request after it slides the session.
STEP = 61
#: Bound of every wait for an instance to apply a change published by the other (the README's promise).
PROPAGATION = 2.0


# A forwarder between an instance and PostgreSQL that the test cuts (shared with test_outages.py).
pg_proxy = test_outages.pg_proxy


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


@pytest.fixture
async def pair(make_client: Any) -> tuple[Any, Any]:
    """Instances A and B: two apps on the same database, Redis namespace and clock."""
    return await make_client(), await make_client()


def session_key(settings: Any, cookie: str) -> str:
    return f"{settings.redis_namespace}:session:{session_hash(cookie)}"


async def gather_all(*calls: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*calls))


# --- sliding expiry ----------------------------------------------------------------------------------------


async def test_concurrent_slides_on_two_instances_only_ever_extend_the_session(
    make_client: Any, services: Any, settings: Any, clock: Any
) -> None:
    # A serves the session and the user from its caches; B, caching nothing, reads them from Redis and SQL
    # first: a request of B takes "now" long before it writes, and a later request of A overtakes it.
    a, b = await make_client(), await make_client(session_cache_ttl=1e-6)
    user = await new_user(services)
    cookie, _ = await open_session(services, user, clock)
    key = session_key(settings, cookie)
    original = await services.redis.hgetall(key)
    started = clock()
    seen: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        # Every value the record's deadline takes while the requests run, as another client sees it.
        while not done.is_set():
            value = await services.redis.hget(key, "expire_time")
            assert value is not None, "the session disappeared"
            seen.append(int(value))
            await asyncio.sleep(0)

    async def ask(client: Any) -> int:
        return (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0]

    watcher = asyncio.create_task(watch())
    for _ in range(6):
        # Requests overlap while the clock moves: each one reads a later "now" than the one before it, and
        # the slides (one per request, the clock having moved past the slide interval) reach Redis in
        # whatever order the two instances get to them.
        pending = []
        for client in itertools.islice(itertools.cycle((a, b)), 12):
            clock.advance(STEP)
            pending.append(asyncio.create_task(ask(client)))
            await asyncio.sleep(0)
        assert await gather_all(*pending) == [200] * 12
        stored = int(await services.redis.hget(key, "expire_time"))
        # The latest refresh wins, whichever instance wrote last.
        assert stored == int(clock()) + settings.session_expire_time
    done.set()
    await watcher

    assert seen == sorted(seen), "a late writer moved the deadline back"
    assert clock() - started > settings.session_expire_time  # alive only thanks to the refreshes
    record = await services.redis.hgetall(key)
    assert record.keys() == original.keys()
    assert {k: v for k, v in record.items() if k != "expire_time"} == {
        k: v for k, v in original.items() if k != "expire_time"
    }
    assert await services.redis.ttl(key) > settings.session_expire_time
    assert {await ask(a), await ask(b)} == {200}


async def test_a_logout_racing_refreshes_on_both_instances_wins(
    pair: tuple[Any, Any], make_user: Any, services: Any, settings: Any, clock: Any
) -> None:
    a, b = pair
    account = await make_user()
    for _ in range(3):
        cookie, _ = await login(a, account)
        key = session_key(settings, cookie)

        async def ask(client: Any, cookie: str = cookie) -> int:
            return (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0]

        async def logout(cookie: str = cookie) -> int:
            response = await a.delete(LOGIN, headers=cookie_headers(cookie))
            return int(response.status)

        assert {await ask(a), await ask(b)} == {200}  # both instances hold the session in their caches
        pending = []
        for index, client in enumerate(itertools.islice(itertools.cycle((b, a)), 16)):
            clock.advance(STEP)  # every decision slides the session
            pending.append(asyncio.create_task(logout() if index == 8 else ask(client)))
            await asyncio.sleep(0)
        answers = await gather_all(*pending)
        assert answers[8] == 200
        assert set(answers) <= {200, 401}

        assert not await services.redis.exists(key), "a refresh brought the logged-out session back"
        assert session_hash(cookie) not in {
            s.hash for s in await services.sessions.list_for_user(account.user.uid)
        }
        for client in (a, b):
            # The other instance drops its cached copy when the revocation reaches it through Redis.
            assert (
                await eventually(lambda c=client: ask(c), lambda status: status == 401, within=PROPAGATION)
                == 401
            )
            assert [await ask(client) for _ in range(3)] == [401] * 3


# --- logins ------------------------------------------------------------------------------------------------


def login_body(account: Any, password: str | None = None) -> dict[str, str]:
    return {"email": account.user.email, "password": account.password if password is None else password}


async def post_login(client: Any, body: dict[str, str], ip: str = UK_IP) -> tuple[int, Any]:
    response = await client.post(LOGIN, json=body, headers=cookie_headers(None, ip=ip))
    cookie = response.cookies.get("_barong_session")
    return response.status, cookie.value if cookie is not None else await response.json()


async def test_simultaneous_logins_of_one_account_each_open_a_live_session(
    pair: tuple[Any, Any], make_user: Any, services: Any
) -> None:
    a, b = pair
    account = await make_user()
    count = 20
    answers = await gather_all(
        *(
            post_login(client, login_body(account))
            for client in itertools.islice(itertools.cycle((a, b)), count)
        )
    )

    assert [status for status, _ in answers] == [200] * count
    cookies = [cookie for _, cookie in answers]
    assert len(set(cookies)) == count
    live = {record.hash for record in await services.sessions.list_for_user(account.user.uid)}
    assert live == {session_hash(cookie) for cookie in cookies}
    for client, cookie in zip(itertools.cycle((b, a)), cookies, strict=False):
        assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0] == 200
    logins = [
        activity
        for activity in await services.activities.list(user_id=account.user.id)
        if activity.topic == "session" and activity.action == "login"
    ]
    assert [activity.result for activity in logins] == ["succeed"] * count


async def test_simultaneous_failed_logins_of_one_account_are_throttled_exactly(
    pair: tuple[Any, Any], make_user: Any, services: Any, settings: Any
) -> None:
    a, b = pair
    account = await make_user()
    limit = settings.login_max_attempts_account
    attempts = limit + 15
    answers = await gather_all(
        *(
            post_login(client, login_body(account, "Wrong-Passw0rd"), ip=f"81.2.69.{10 + index}")
            for index, client in enumerate(itertools.islice(itertools.cycle((a, b)), attempts))
        )
    )

    statuses = sorted(status for status, _ in answers)
    # No more passwords are tried than the limit allows, however many arrive at once.
    assert statuses == [401] * limit + [429] * (attempts - limit)
    counter = f"{settings.redis_namespace}:throttle:user.login:{account.user.email.lower()}"
    assert int(await services.redis.get(counter)) == limit
    failed = [
        activity
        for activity in await services.activities.list(user_id=account.user.id)
        if activity.action == "login" and activity.result == "failed"
    ]
    assert len(failed) == limit
    assert (await post_login(b, login_body(account)))[0] == 429  # even with the right password


async def test_simultaneous_failed_logins_from_one_address_are_throttled_exactly(
    pair: tuple[Any, Any], make_user: Any, services: Any, settings: Any
) -> None:
    a, b = pair
    limit = settings.login_max_attempts_ip
    attempts = limit + 5
    accounts = [await make_user() for _ in range(attempts)]  # one try each: only the address limiter binds
    answers = await gather_all(
        *(
            post_login(client, login_body(account, "Wrong-Passw0rd"))
            for client, account in zip(itertools.cycle((a, b)), accounts, strict=False)
        )
    )

    assert sorted(status for status, _ in answers) == [401] * limit + [429] * (attempts - limit)
    counter = f"{settings.redis_namespace}:throttle:ip.login:{UK_IP}"
    assert int(await services.redis.get(counter)) == limit


async def test_logins_racing_failures_are_counted_exactly(
    pair: tuple[Any, Any], make_user: Any, services: Any, settings: Any
) -> None:
    """Successful logins do not use up the address's allowance of failures, even while failures race them."""
    a, b = pair
    limit = settings.login_max_attempts_ip
    good = await make_user()
    bad = [await make_user() for _ in range(limit - 1)]
    calls = [post_login(a, login_body(account, "Wrong-Passw0rd")) for account in bad]
    calls += [post_login(b, login_body(good)) for _ in range(10)]
    answers = await gather_all(*calls)

    assert [status for status, _ in answers] == [401] * (limit - 1) + [200] * 10
    counter = f"{settings.redis_namespace}:throttle:ip.login:{UK_IP}"
    assert int(await services.redis.get(counter)) == limit - 1
    assert (await post_login(a, login_body(bad[0], "Wrong-Passw0rd")))[0] == 401  # the last one allowed
    assert (await post_login(a, login_body(good)))[0] == 429


# --- permission edits --------------------------------------------------------------------------------------


async def superadmin_headers(client: Any, make_user: Any) -> dict[str, str]:
    return bearer(await jwt_for(client, await make_user(role="superadmin")))


def compiled(client: Any) -> Any:
    """The compiled permissions an instance decides from."""
    return compiled_index(client.app[STATE].policy.permissions)


async def database_policy(services: Any) -> Any:
    """The compiled permissions an instance holds once it has loaded the database's rows."""
    rows = await services.permissions.list_all()
    return compiled_index(CompiledPermissions.from_enforcer(build_permission_enforcer(rows)))


def compiled_index(permissions: Any) -> Any:
    return permissions._index  # the compiled form the decisions read


async def policies_match_database(
    clients: tuple[Any, ...], services: Any, *, within: float = PROPAGATION
) -> None:
    """Wait (bounded) until every instance's compiled permissions are those the database holds."""
    expected = await database_policy(services)

    async def matching() -> list[bool]:
        return [compiled(client) == expected for client in clients]

    assert await eventually(matching, all, within=within) == [True] * len(clients)


async def decisions(client: Any, cookie: str, paths: list[str]) -> list[int]:
    return [(await decide(client, "GET", path, cookie_headers(cookie)))[0] for path in paths]


async def agreed(
    clients: tuple[Any, ...], cookie: str, paths: list[str], expected: list[int]
) -> Callable[[], Awaitable[list[list[int]]]]:
    async def probe() -> list[list[int]]:
        return [await decisions(client, cookie, paths) for client in clients]

    found = await eventually(probe, lambda answers: all(a == expected for a in answers), within=PROPAGATION)
    assert found == [expected] * len(clients)
    return probe


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_permissions_created_at_once_on_both_instances_are_all_kept_and_applied(
    pair: tuple[Any, Any], make_user: Any, services: Any, clock: Any
) -> None:
    a, b = pair
    headers = await superadmin_headers(a, make_user)
    member = await new_user(services)
    cookie, _ = await open_session(services, member, clock)
    per_instance = 10
    paths = [f"api/v2/concurrent/{index}" for index in range(2 * per_instance)]
    assert await decisions(a, cookie, paths) == [401] * len(paths)

    async def create(client: Any, path: str) -> tuple[int, Any]:
        body = {"role": "member", "verb": "GET", "path": path, "action": "ACCEPT"}
        response = await client.post(PERMISSIONS, json=body, headers=headers)
        return response.status, await response.json()

    answers = await gather_all(
        *(create(client, path) for client, path in zip(itertools.cycle((a, b)), paths))
    )

    assert [status for status, _ in answers] == [201] * len(paths), answers
    rows = [row for row in await services.permissions.list_all() if row.path.startswith("api/v2/concurrent/")]
    assert sorted(row.path for row in rows) == sorted(paths)
    assert sorted(row.id for row in rows) == sorted(body["id"] for _, body in answers)
    await policies_match_database((a, b), services)
    await agreed((a, b), cookie, paths, [200] * len(paths))
    created = [
        activity
        for activity in await services.activities.list(category="admin")
        if activity.topic == "permissions" and activity.action == "create"
    ]
    assert len(created) == len(paths)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_concurrent_updates_of_one_permission_leave_one_write_everywhere(
    pair: tuple[Any, Any], make_user: Any, services: Any, clock: Any
) -> None:
    a, b = pair
    headers = await superadmin_headers(a, make_user)
    member = await new_user(services)
    cookie, _ = await open_session(services, member, clock)
    path = "api/v2/contended"
    body = {"role": "member", "verb": "GET", "path": path, "action": "DROP", "topic": "w0"}
    response = await a.post(PERMISSIONS, json=body, headers=headers)
    assert response.status == 201
    ident = (await response.json())["id"]

    for round_ in range(3):
        writes = [
            {
                "id": ident,
                "role": "member",
                "verb": "GET",
                "path": path,
                "action": action,
                "topic": f"r{round_}w{n}",
            }
            for n, action in enumerate(["ACCEPT", "DROP"] * 6)
        ]

        async def put(client: Any, write: dict[str, Any]) -> int:
            return int((await client.put(PERMISSIONS, json=write, headers=headers)).status)

        statuses = await gather_all(
            *(put(client, write) for client, write in zip(itertools.cycle((a, b)), writes))
        )
        assert statuses == [200] * len(writes)

        (row,) = [row for row in await services.permissions.list_all() if row.id == ident]
        final = {"id": row.id, "role": row.role, "verb": row.verb, "path": row.path, "action": row.action}
        assert {**final, "topic": row.topic} in writes
        await policies_match_database((a, b), services)
        await agreed((a, b), cookie, [path], [200 if row.action == "ACCEPT" else 401])

    # The audit trail tells the row's history without a gap: each update's "before" is the "after" of the one
    # before it, as if the updates had been made one at a time (the order the database applied them in).
    history = [
        orjson.loads(activity.data or "{}")
        for activity in await services.activities.list(category="admin")
        if activity.topic == "permissions" and activity.action in ("create", "update")
    ]
    assert len(history) == 1 + 3 * 12
    for previous, current in itertools.pairwise(history):
        assert current["before"] == previous["after"]
    assert history[-1]["after"] == {**final, "topic": row.topic}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_concurrent_partial_updates_of_one_restriction_are_merged_not_lost(
    pair: tuple[Any, Any], make_user: Any, services: Any
) -> None:
    """Two admins change different fields of one restriction at once on two instances: both changes stay
    (each update merges its fields onto the row as the other left it, not onto what it read before)."""
    a, b = pair
    headers = await superadmin_headers(a, make_user)
    for round_ in range(4):
        body = {"scope": "ip", "value": f"203.0.113.{round_}", "category": "blacklist", "code": 403}
        response = await a.post(f"{ADMIN}/restrictions", json=body, headers=headers)
        assert response.status == 201, await response.text()
        ident = (await response.json())["id"]
        changes = [{"code": 451}, {"state": "disabled"}, {"value": f"198.51.100.{round_}"}]

        async def put(client: Any, change: dict[str, Any], ident: int = ident) -> int:
            response = await client.put(
                f"{ADMIN}/restrictions", json={"id": ident, **change}, headers=headers
            )
            return int(response.status)

        assert await gather_all(*(put(c, change) for c, change in zip((a, b, a), changes))) == [200] * 3
        (row,) = [row for row in await services.restrictions.list_all() if row.id == ident]
        assert (row.code, row.state, row.value) == (451, "disabled", f"198.51.100.{round_}")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_instance_whose_reload_failed_catches_up_without_another_change(
    make_client: Any,
    make_user: Any,
    services: Any,
    pg_proxy: tuple[Any, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """B's database connection drops just as A announces a permission change: B's reload fails, and B
    retries it once the database answers again, instead of deciding from the old policy until the next
    change or the periodic reload (a minute later)."""
    proxy, proxied_url = pg_proxy
    a = await make_client()
    b = await make_client(database_url=proxied_url, database_timeout=0.5)
    headers = await superadmin_headers(a, make_user)
    await policies_match_database((a, b), services)

    await proxy.stop()
    body = {"role": "member", "verb": "GET", "path": "api/v2/missed", "action": "ACCEPT"}
    response = await a.post(PERMISSIONS, json=body, headers=headers)
    assert response.status == 201
    await policies_match_database((a,), services)

    async def failed_reloads() -> int:
        return sum("reloading permissions failed" in record.getMessage() for record in caplog.records)

    assert await eventually(failed_reloads, bool, within=PROPAGATION + 1.0)  # B tried while cut off
    assert compiled(b) != await database_policy(services)
    await proxy.start()

    await policies_match_database((a, b), services, within=5.0)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_one_permission_deleted_and_updated_at_once_on_both_instances(
    pair: tuple[Any, Any], make_user: Any, services: Any, clock: Any
) -> None:
    """Deletions and updates of one row race on both instances: one deletion wins (204), the rest find the
    row gone (404) or changed it before (200): never a 5xx, one deletion recorded, and no instance keeps
    applying the deleted row."""
    a, b = pair
    headers = await superadmin_headers(a, make_user)
    member = await new_user(services)
    cookie, _ = await open_session(services, member, clock)
    path = "api/v2/doomed"
    body = {"role": "member", "verb": "GET", "path": path, "action": "ACCEPT"}
    response = await a.post(PERMISSIONS, json=body, headers=headers)
    assert response.status == 201
    ident = (await response.json())["id"]
    await agreed((a, b), cookie, [path], [200])

    async def delete(client: Any) -> int:
        return int((await client.delete(PERMISSIONS, params={"id": ident}, headers=headers)).status)

    async def update(client: Any) -> int:
        change = {"id": ident, "action": "ACCEPT", "topic": "late"}
        return int((await client.put(PERMISSIONS, json=change, headers=headers)).status)

    calls = [call for _ in range(3) for call in (delete(a), update(b), delete(b), update(a))]
    statuses = await gather_all(*calls)

    deletions, updates = statuses[0::2], statuses[1::2]
    assert sorted(deletions) == [204] + [404] * (len(deletions) - 1)
    assert set(updates) <= {200, 404}
    assert ident not in {row.id for row in await services.permissions.list_all()}
    removed = [
        activity
        for activity in await services.activities.list(category="admin")
        if activity.topic == "permissions" and activity.action == "delete"
    ]
    assert len(removed) == 1
    await policies_match_database((a, b), services)
    await agreed((a, b), cookie, [path], [401])
