"""(f) In-process decision latency with 10, 1,000 and 10,000 permissions and with 10,000 restrictions.

    .venv/bin/python bench/decision_latency.py [--batches 15] [--batch-size 2000] [--redis-url URL]

Builds the real app (``build_app``) in a temporary data dir (SQLite + the private Redis, or --redis-url with
a fresh namespace), starts it with aiohttp's test server, logs a member in through the login endpoint, then
calls ``DecisionPipeline.decide`` directly — no HTTP — for an allowed cookie request
``GET api/v2/peatio/account/balances``.  So the figure is the decision alone (restrictions, path rules,
cookie authenticator with its caches warm, the compiled permission index, the cached JWT), not aiohttp's
request parsing, the cookie parsing or the client-IP resolution, which the wrk scenarios include.

Each policy size is written to the database (``permissions`` replaced, ``restrictions`` bulk-inserted) and
loaded with ``PolicyState.reload()``, the same reload a change message triggers.  Two request mixes:

* same path: one request repeated (the permission verdict comes from the compiled index's memo);
* distinct paths: ``.../balances/<i>``, every path new, more of them than the memo holds (16,384), so every
  decision walks the prefix index.

Timing starts once the change listener has been up for a second (caches are bypassed while it is down);
a case during which it was not steady is flagged with ``*``.

Reported: µs per decision, median of the batches (min in brackets), plus two components measured
alone: ``CompiledPermissions.decide`` on distinct paths and ``CompiledRestrictions.match``.  The database
is always the temporary SQLite: the hot path does no SQL, so the backend cannot change these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict, CIMultiDictProxy
from sqlalchemy import delete

from authz.app import SERVICES, build_app
from authz.decision import Allow, DecisionRequest
from authz.geoip import GeoLocation
from authz.http.state import STATE
from authz.serve import prepare
from authz.settings import load_settings
from identity.db import restrictions as restrictions_table
from identity.db import utcnow
from identity.models import Permission
from identity.passwords import hash_password
from identity.restrictions import validate_restriction

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) authz-bench"
CLIENT_IP = "81.2.69.10"
PASSWORD = "Bench-Passw0rd-42"
PATH = "api/v2/peatio/account/balances"
COOKIE = "_barong_session"

#: Ten rows in the shape of policies/permissions.yml; member may GET the balances.
BASE_PERMISSIONS = (
    Permission("member", "ALL", "api/v2/peatio/account", "ACCEPT"),
    Permission("member", "ALL", "api/v2/peatio/market", "ACCEPT"),
    Permission("member", "ALL", "api/v2/barong/resource", "ACCEPT"),
    Permission("member", "GET", "api/v2/ranger", "ACCEPT"),
    Permission("member", "ALL", "api/v2/applogic", "ACCEPT"),
    Permission("admin", "ALL", "api/v2", "ACCEPT"),
    Permission("admin", "ALL", "api/v2/barong/admin/permissions", "DROP"),
    Permission("admin", "POST", "api/v2/", "AUDIT"),
    Permission("superadmin", "ALL", "api/v2", "ACCEPT"),
    Permission("accountant", "GET", "api/v2/barong/admin", "ACCEPT"),
)
_SERVICES = ("peatio", "barong", "finex", "applogic", "ranger", "arke", "custody")
_WORDS = (
    "account",
    "orders",
    "trades",
    "markets",
    "wallets",
    "deposits",
    "withdraws",
    "admin",
    "users",
    "kyc",
)


def permission_set(size: int) -> list[Permission]:
    """BASE_PERMISSIONS plus synthetic rows: 40 roles (member among them), paths of 2 to 6 segments.

    Every synthetic segment ends in digits, so no synthetic row is a prefix of the measured paths: the
    verdict stays "allowed" while the member's index holds paths of many different lengths.
    """
    rng = random.Random(size)
    roles = ["member", *(f"role{i:02d}" for i in range(1, 40))]
    rows = list(BASE_PERMISSIONS[:size])
    while len(rows) < size:
        segments = [rng.choice(_SERVICES)] + [
            f"{rng.choice(_WORDS)}{rng.randrange(10_000)}" for _ in range(rng.randint(1, 5))
        ]
        action = rng.choices(("ACCEPT", "DROP", "AUDIT"), weights=(8, 1, 1))[0]
        verb = rng.choice(("ALL", "GET", "POST", "PUT", "DELETE"))
        rows.append(Permission(roles[len(rows) % len(roles)], verb, "api/v2/" + "/".join(segments), action))
    return rows


def restriction_rows(size: int) -> list[dict[str, object]]:
    """``size`` enabled restrictions of every category and scope, none of which covers CLIENT_IP.

    No maintenance/all row (it would answer every request); the mix is 55 % single IPs (a tenth IPv6),
    25 % subnets of /8 to /30, 8 % blocklogin IPs, 5 % whitelist IPs, and countries and continents.
    """
    rng = random.Random(size)
    client = ipaddress.ip_address(CLIENT_IP)
    seen: set[tuple[str, str, str]] = set()
    rows: list[dict[str, object]] = []
    places = [f"{a}{b}" for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    rng.shuffle(places)
    now = utcnow()

    def random_ipv4() -> str:
        while True:
            address = ipaddress.IPv4Address(rng.getrandbits(32))
            if address.is_global and str(address).split(".")[0] != "81":
                return str(address)

    while len(rows) < size:
        draw = rng.random()
        if draw < 0.55:
            category, scope = "blacklist", "ip"
            value = str(ipaddress.IPv6Address(rng.getrandbits(128))) if rng.random() < 0.1 else random_ipv4()
        elif draw < 0.80:
            category, scope = "blacklist", "ip_subnet"
            network = ipaddress.ip_network(f"{random_ipv4()}/{rng.randint(8, 30)}", strict=False)
            if client in network:
                continue
            value = str(network)
        elif draw < 0.88:
            category, scope, value = "blocklogin", "ip", random_ipv4()
        elif draw < 0.93:
            category, scope, value = "whitelist", "ip", random_ipv4()
        elif draw < 0.99 and places:
            category, scope, value = "blacklist", "country", places.pop()
        else:
            category, scope, value = "maintenance", "continent", f"C{rng.randrange(100_000)}"
        if (category, scope, value) in seen:
            continue
        seen.add((category, scope, value))
        r = validate_restriction(category, scope, value)
        rows.append(
            {
                "category": r.category,
                "scope": r.scope,
                "value": r.value,
                "code": r.code,
                "state": r.state,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


SHUTDOWN_TIMEOUT = 20.0
SHUTDOWN_HUNG: list[str] = []


def _task_stacks() -> str:
    """Where every pending task waits (the whole await chain, which ``Task.print_stack`` does not show)."""
    lines = []
    for task in asyncio.all_tasks():
        lines.append(f"task {task.get_name()} (cancelling={task.cancelling()}):")
        coro: object = task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is None:
                break
            lines.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return "\n".join(lines)


@dataclass
class Timing:
    median_us: float
    min_us: float


@dataclass
class Case:
    label: str
    permissions: int
    restrictions: int
    results: dict[str, Timing | str] = field(default_factory=dict)
    note: str = ""


def _timing(per_call_us: list[float]) -> Timing:
    return Timing(statistics.median(per_call_us), min(per_call_us))


async def time_async(call: Callable[[int], Awaitable[object]], batches: int, size: int) -> Timing:
    """µs per ``await call(i)``: one warm-up batch, then ``batches`` timed batches of ``size`` calls.

    The loop gets a turn between batches (as between requests in the server), so that the change
    listener's pings are answered and its channel stays up.
    """
    per_call: list[float] = []
    gc.collect()
    for batch in range(batches + 1):
        offset = batch * size
        started = time.perf_counter_ns()
        for i in range(offset, offset + size):
            await call(i)
        if batch:
            per_call.append((time.perf_counter_ns() - started) / size / 1000)
        await asyncio.sleep(0)
    return _timing(per_call)


async def time_sync(call: Callable[[int], object], batches: int, size: int) -> Timing:
    """µs per ``call(i)``, batched as :func:`time_async`."""
    per_call: list[float] = []
    gc.collect()
    for batch in range(batches + 1):
        offset = batch * size
        started = time.perf_counter_ns()
        for i in range(offset, offset + size):
            call(i)
        if batch:
            per_call.append((time.perf_counter_ns() - started) / size / 1000)
        await asyncio.sleep(0)
    return _timing(per_call)


async def settle(listener: object, timeout: float = 10.0) -> bool:
    """Wait until the change listener is up, and has been for a second; False if it never gets there.

    Compiling 10,000 rows in a thread holds the GIL long enough for the listener's ping to time out; it
    then drops the caches, reconnects and reloads the policy.  Measuring meanwhile would time SQL and
    Redis reads instead of the decision, so a case measured without a steady listener is flagged.
    """
    deadline = time.monotonic() + timeout
    steady_since = None
    while time.monotonic() < deadline:
        if getattr(listener, "healthy", False):
            steady_since = steady_since or time.monotonic()
            if time.monotonic() - steady_since >= 1.0:
                return True
        else:
            steady_since = None
        await asyncio.sleep(0.1)
    return False


def request(cookie: str, path: str) -> DecisionRequest:
    headers = CIMultiDictProxy(
        CIMultiDict(
            {
                "Host": "gateway",
                "User-Agent": USER_AGENT,
                "X-Forwarded-For": CLIENT_IP,
                "Cookie": f"{COOKIE}={cookie}",
            }
        )
    )
    return DecisionRequest(
        method="GET", path=path, headers=headers, cookies={COOKIE: cookie}, client_ip=CLIENT_IP
    )


async def measure(settings_redis: tuple[object, str], args: argparse.Namespace) -> list[Case]:
    settings, redis_url = settings_redis
    app = build_app(settings, redis_url)  # type: ignore[arg-type]
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        state = app[STATE]
        services = app[SERVICES]
        email = f"latency-{uuid.uuid4().hex[:8]}@example.com"
        await services.users.create(
            email=email, password_digest=hash_password(PASSWORD), role="member", state="active"
        )
        response = await client.post(
            "/api/v2/barong/identity/sessions",
            json={"email": email, "password": PASSWORD},
            headers={"User-Agent": USER_AGENT, "X-Forwarded-For": CLIENT_IP},
        )
        if response.status != 200:
            raise SystemExit(f"login failed: {response.status} {await response.text()}")
        cookie = response.cookies[COOKIE].value

        total = args.batch_size * (args.batches + 1)
        same = request(cookie, PATH)
        distinct = [request(cookie, f"{PATH}/{i}") for i in range(total)]
        distinct_paths = [r.path for r in distinct]
        pipeline, policy = state.pipeline, state.policy

        cases = [
            Case("10 permissions", 10, 0),
            Case("1,000 permissions", 1_000, 0),
            Case("10,000 permissions", 10_000, 0),
            Case("10 permissions + 10,000 restrictions", 10, 10_000),
        ]
        for case in cases:
            await services.permissions.add_many(permission_set(case.permissions), replace=True)
            rows = restriction_rows(case.restrictions) if case.restrictions else []
            async with services.engine.begin() as conn:
                await conn.execute(delete(restrictions_table))
                if rows:
                    await conn.execute(restrictions_table.insert(), rows)
            await policy.reload()
            loaded = (len(await services.permissions.list_all()), len(policy.restrictions))
            if loaded != (case.permissions, case.restrictions):
                raise SystemExit(
                    f"{case.label}: loaded {loaded}, expected {(case.permissions, case.restrictions)}"
                )

            steady = await settle(state.listener)
            try:
                decision = await pipeline.decide(same)
                if not (isinstance(decision, Allow) and decision.principal is not None):
                    raise RuntimeError(f"expected an allowed user decision, got {decision!r}")
                case.results["same"] = await time_async(
                    lambda _i: pipeline.decide(same), args.batches, args.batch_size
                )
                case.results["distinct"] = await time_async(
                    lambda i: pipeline.decide(distinct[i]), args.batches, args.batch_size
                )
            except Exception as exc:  # noqa: BLE001 - a broken decision is a result to report, not a crash
                case.results.setdefault("same", f"{type(exc).__name__}: {exc}")
                case.results.setdefault("distinct", "-")
            permissions, restrictions = policy.permissions, policy.restrictions
            case.results["permissions"] = await time_sync(
                lambda i, index=permissions: index.decide("member", "GET", distinct_paths[i]),
                args.batches,
                args.batch_size,
            )
            case.results["restrictions"] = await time_sync(
                lambda _i, index=restrictions: index.match(CLIENT_IP, GeoLocation.EMPTY),
                args.batches,
                args.batch_size,
            )
            if not (steady and state.listener.healthy):
                case.note = "change listener down around the measurement: caches may have been bypassed"
            print(f"  measured: {case.label}", file=sys.stderr, flush=True)
        return cases
    finally:
        # Bounded: a hung shutdown (seen once: the change listener not finishing its cancellation inside
        # redis-py's PubSub.get_message) must not keep the bench from reporting.
        closing = asyncio.ensure_future(client.close())
        done, _ = await asyncio.wait({closing}, timeout=SHUTDOWN_TIMEOUT)
        if not done:
            SHUTDOWN_HUNG.append(_task_stacks())


def cell(value: Timing | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value.median_us:7.2f} [{value.min_us:6.2f}]"


def report(cases: Sequence[Case], args: argparse.Namespace) -> None:
    print(
        f"µs per decision, median of {args.batches} batches of {args.batch_size:,} [min]; in-process, no HTTP\n"
    )
    columns = ("decide, same path", "decide, distinct paths", "permissions.decide", "restrictions.match")
    header = f"{'policy':38} " + " ".join(f"{c:>22}" for c in columns)
    print(header)
    print("-" * len(header))
    problems: list[str] = []
    for case in cases:
        cells = []
        for key in ("same", "distinct", "permissions", "restrictions"):
            value = case.results.get(key)
            if isinstance(value, str) and value != "-":
                problems.append(f"{case.label}: decide raised {value}")
                value = "ERROR (below)"
            cells.append(cell(value))
        flag = " *" if case.note else ""
        print(f"{case.label:38} " + " ".join(f"{c:>22}" for c in cells) + flag)
        if case.note:
            problems.append(f"* {case.label}: {case.note}")
    base, big = cases[0].results, cases[2].results
    for key, what in (
        ("same", "same path"),
        ("distinct", "distinct paths"),
        ("permissions", "permissions.decide"),
    ):
        small, large = base.get(key), big.get(key)
        if isinstance(small, Timing) and isinstance(large, Timing):
            print(f"10,000 vs 10 permissions, {what}: x{large.median_us / small.median_us:.2f}")
    for problem in problems:
        print(problem if problem.startswith("*") else f"ERROR {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="In-process decision latency of the authz pipeline.")
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--redis-url", help="use this Redis (a fresh key namespace) instead of a private one")
    args = parser.parse_args(argv)

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    tmp = Path(tempfile.mkdtemp(prefix="authz-latency-"))
    embedded = None
    try:
        settings = load_settings(
            env={},
            data_dir=tmp / "data",
            redis_url=args.redis_url or "",
            redis_namespace=f"latency{uuid.uuid4().hex[:8]}",
            session_cookie_secure=False,
            log_level="warning",
        )
        redis_url, embedded = prepare(settings)  # migrations, default policies, the private Redis
        import uvloop

        # A plain run_until_complete: asyncio.run would cancel and await leftover tasks, which is exactly
        # what hangs when the app's shutdown hangs.
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        cases = loop.run_until_complete(measure((settings, redis_url), args))
        report(cases, args)
        if SHUTDOWN_HUNG:
            print(
                f"WARNING: the app's shutdown did not finish within {SHUTDOWN_TIMEOUT:.0f} s:\n{SHUTDOWN_HUNG[0]}"
            )
        return 1 if any(isinstance(v, str) and v != "-" for c in cases for v in c.results.values()) else 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        if SHUTDOWN_HUNG:
            sys.stdout.flush()
            os._exit(1)  # pending tasks of the hung shutdown would otherwise be awaited at exit


if __name__ == "__main__":
    sys.exit(main())
