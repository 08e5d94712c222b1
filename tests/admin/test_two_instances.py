"""Two running instances sharing the database and Redis: a change made through one instance's admin API, or
with the ``authz`` command, is applied by the other's decision endpoint within one second (Redis pub/sub),
without a restart.  These are the only timed assertions of the admin tests: the second is the promise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.admin.conftest import ADMIN
from tests.authz import test_cli
from tests.authz.helpers import cookie_headers, decide, eventually, new_user, open_session
from tests.resource.helpers import Caller

# The command's fixtures (environment pointing at the test's database and Redis), shared with test_cli.py.
clean_env = test_cli.clean_env
cli = test_cli.cli

PUBLIC = "api/v2/barong/identity/configs"  # a pass rule: only a restriction can deny it
BALANCES = "api/v2/peatio/account/balances"  # members: ACCEPT ALL api/v2/peatio/account
PROMISE = 1.0


@pytest.fixture
async def other(make_client: Any) -> Any:
    """Instance B: another app on the same database and Redis namespace as ``api`` (instance A)."""
    return await make_client()


async def within_a_second(
    change: Callable[[], Awaitable[Any]], probe: Callable[[], Awaitable[int]], status: int
) -> None:
    """Make ``change``, then poll ``probe`` until it answers ``status``: it must within a second of the change
    being made (committed and announced: the admin call answered, the command exited)."""
    await change()
    started = time.monotonic()
    answered = await eventually(probe, lambda found: found == status, within=PROMISE)
    elapsed = time.monotonic() - started
    assert answered == status
    assert elapsed < PROMISE, f"applied after {elapsed:.3f} s"


def client_status(client: Any, ip: str) -> Callable[[], Awaitable[int]]:
    async def probe() -> int:
        return (await decide(client, "GET", PUBLIC, {"X-Forwarded-For": ip, "User-Agent": "UA"}))[0]

    return probe


async def test_a_restriction_added_on_one_instance_is_enforced_by_the_other(
    api: Any, other: Any, superadmin: Caller
) -> None:
    from_blocked = client_status(other, "203.0.113.7")
    assert await from_blocked() == 200
    created: dict[str, Any] = {}

    async def add() -> None:
        body = {"scope": "ip", "value": "203.0.113.7", "category": "blacklist", "code": 451}
        response = await api.post(f"{ADMIN}/restrictions", json=body, headers=superadmin.headers)
        assert response.status == 201
        created.update(await response.json())

    async def remove() -> None:
        response = await api.delete(
            f"{ADMIN}/restrictions", params={"id": created["id"]}, headers=superadmin.headers
        )
        assert response.status == 204

    await within_a_second(add, from_blocked, 451)
    await within_a_second(remove, from_blocked, 200)


async def test_a_permission_changed_on_one_instance_is_applied_by_the_other(
    api: Any, other: Any, superadmin: Caller, services: Any, clock: Any
) -> None:
    member = await new_user(services)
    cookie, _ = await open_session(services, member, clock)

    async def balances() -> int:
        return (await decide(other, "GET", BALANCES, cookie_headers(cookie)))[0]

    assert await balances() == 200
    created: dict[str, Any] = {}

    async def drop() -> None:
        body = {"role": "member", "verb": "ALL", "path": BALANCES, "action": "DROP"}
        response = await api.post(f"{ADMIN}/permissions", json=body, headers=superadmin.headers)
        assert response.status == 201
        created.update(await response.json())

    async def accept_again() -> None:
        response = await api.put(
            f"{ADMIN}/permissions", json={"id": created["id"], "action": "ACCEPT"}, headers=superadmin.headers
        )
        assert response.status == 200

    await within_a_second(drop, balances, 401)
    await within_a_second(accept_again, balances, 200)


async def test_a_change_made_with_the_command_reaches_a_running_instance(api: Any, cli: Any) -> None:
    from_blocked = client_status(api, "203.0.113.9")
    assert await from_blocked() == 200
    added: list[str] = []

    async def add() -> None:
        # The command runs its own event loop: in a thread, as it would in another process.
        result = await asyncio.to_thread(
            cli, "restrictions", "add", "--category", "maintenance", "--scope", "ip", "--value", "203.0.113.9"
        )
        assert result.code == 0, result.err
        added.append(result.out.strip())

    async def remove() -> None:
        result = await asyncio.to_thread(cli, "restrictions", "remove", added[0])
        assert result.code == 0, result.err

    await within_a_second(add, from_blocked, 471)
    await within_a_second(remove, from_blocked, 200)
