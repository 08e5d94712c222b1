"""The open-loop load generator of bench/soak.py (started by it on the project's virtualenv).

    .venv/bin/python bench/soak_load.py CONFIG.json

Requests leave on a fixed timetable whatever the server does: decision number ``i`` is due at
``i / rate`` seconds, login number ``j`` at ``(j + 0.5) / login_rate``.  A request's latency runs from
the time it was *due*, not from when it was sent, so a stall of the server (or of this generator) shows as
latency of every request that should have left meanwhile (no coordinated omission).  How late requests
left is measured too (``lag``: from the due time to the first line of the request's task) and reported:
if it grows, the generator, not the server, is the bottleneck.

The decisions cycle through ``MIX`` (10 slots); logins have their own timetable and each successful one
is followed by a decision with the new cookie (``login_cookie``, timed from its own send).  Every answer is
checked; anything unexpected, a connection error or a timeout is an error.  The 401s of the ``denied``
class are the deliberate denials, counted apart.

Output, one JSON object a line on stdout:

* ``{"event": "boundary", "bucket": k}`` when the timetable crosses the start of bucket ``k`` (bucket -1
  is the warm-up; the last boundary is the end of the run): the orchestrator samples memory and CPU then;
* ``{"event": "bucket", ...}`` once every request due in that bucket has finished: counts, errors,
  latency percentiles per class, lag, the generator's CPU time;
* ``{"event": "summary", ...}`` at the end: totals since the start, percentiles over the measured buckets.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import uvloop

BALANCES_PATH = "/api/v2/auth/api/v2/peatio/account/balances"
PASS_PATH = "/api/v2/auth/api/v2/barong/public/ping"
LOGIN_PATH = "/api/v2/barong/identity/sessions"
COOKIE_NAME = "_barong_session"
DENIED_BODY = {"errors": ["authz.invalid_session"]}

#: One cycle of the decision timetable: 40 % cookie, 20 % API key, 20 % denied, 20 % pass route.
MIX = ("cookie", "apikey", "cookie", "denied", "pass", "cookie", "apikey", "pass", "cookie", "denied")
CLASSES = ("cookie", "apikey", "denied", "pass", "login", "login_cookie")
#: What the sidecar's ``authz_decisions_total`` should count for each correctly answered request.
DECISION_OF = {
    "cookie": "allow/allowed",
    "apikey": "allow/allowed",
    "login_cookie": "allow/allowed",
    "pass": "allow/pass_rule",
    "denied": "deny/authz.invalid_session",
}
ERROR_SAMPLES = 5


def percentiles(values: list[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p90/p99/p99.9 and max, in the unit of ``values`` (None when empty)."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "p999": None, "max": None}
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, math.ceil(q * n) - 1))]

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "p999": rank(0.999), "max": ordered[-1]}


@dataclass
class Bucket:
    index: int  # -1: the warm-up
    start: float  # due times, seconds from the start of the timetable
    end: float
    latency: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CLASSES})  # ms
    lag: list[float] = field(default_factory=list)  # ms
    sent: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # "class: what" -> count
    error_samples: list[str] = field(default_factory=list)
    denials: int = 0
    pending: int = 0
    closed: bool = False  # the timetable has passed its end
    cpu_start: float = 0.0

    def report(self, cpu_now: float) -> dict[str, object]:
        everything = [v for values in self.latency.values() for v in values]
        decisions = [v for c, values in self.latency.items() if c in DECISION_OF for v in values]
        return {
            "event": "bucket",
            "bucket": self.index,
            "start": self.start,
            "end": self.end,
            "sent": dict(self.sent),
            "ok": dict(self.ok),
            "requests": sum(self.sent.values()),
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "error_samples": self.error_samples,
            "denials": self.denials,
            "latency_ms": {c: percentiles(v) for c, v in self.latency.items() if v},
            "latency_all_ms": percentiles(everything),
            "latency_decisions_ms": percentiles(decisions),
            "lag_ms": percentiles(self.lag),
            "generator_cpu_s": cpu_now - self.cpu_start,
        }


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Generator:
    def __init__(self, config: dict) -> None:
        self.cfg = config
        self.base: str = config["base"]
        self.ua_ip = {"User-Agent": config["user_agent"], "X-Forwarded-For": config["client_ip"]}
        self.cookie_headers = {**self.ua_ip, "Cookie": f"{COOKIE_NAME}={config['cookie']}"}
        self.keys: list[tuple[str, bytes]] = [(k["kid"], k["secret"].encode()) for k in config["keys"]]
        self.last_nonce = [0] * len(self.keys)
        self.emails: list[str] = config["login_emails"]
        self.rate: float = config["rate"]
        self.login_rate: float = config["login_rate"]
        self.warmup: float = config["warmup"]
        self.duration: float = config["duration"]
        self.interval: float = config["interval"]
        self.sessions: list[aiohttp.ClientSession] = []
        self.next_session = 0
        self.buckets: list[Bucket] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.t0 = 0.0
        self.emitted = 0  # buckets reported so far
        self.measured_latency: dict[str, list[float]] = {c: [] for c in CLASSES}
        self.measured_lag: list[float] = []
        self.totals_sent: Counter[str] = Counter()
        self.totals_ok: Counter[str] = Counter()
        self.totals_errors: Counter[str] = Counter()
        self.totals_denials = 0
        self.samples: list[str] = []
        self.counter = 0
        self.login_counter = 0

    # --- the timetable ---------------------------------------------------------------------------------

    def make_buckets(self) -> None:
        self.buckets.append(Bucket(-1, 0.0, self.warmup))
        start, k = self.warmup, 0
        end_of_run = self.warmup + self.duration
        while start < end_of_run - 1e-9:
            end = min(start + self.interval, end_of_run)
            self.buckets.append(Bucket(k, start, end))
            start, k = end, k + 1

    def bucket_for(self, due: float) -> Bucket:
        if due < self.warmup or len(self.buckets) == 1:
            return self.buckets[0]
        k = min(int((due - self.warmup) // self.interval), len(self.buckets) - 2)
        return self.buckets[k + 1]

    async def run(self) -> None:
        self.make_buckets()
        pools = int(self.cfg["connections"])
        timeout = aiohttp.ClientTimeout(total=float(self.cfg["timeout"]))
        for _ in range(pools):
            connector = aiohttp.TCPConnector(
                limit=int(self.cfg["max_connections_per_pool"]), ttl_dns_cache=None
            )
            # No cookie jar: every request carries exactly the credentials of its class.
            self.sessions.append(
                aiohttp.ClientSession(
                    connector=connector,
                    timeout=timeout,
                    cookie_jar=aiohttp.DummyCookieJar(),
                    auto_decompress=False,
                )
            )
        reporter = asyncio.create_task(self.reporter())
        try:
            await self.schedule()
            while self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)
            for bucket in self.buckets:
                bucket.closed = True
            await self.report_ready()
        finally:
            reporter.cancel()
            for session in self.sessions:
                await session.close()
        emit(self.summary())

    async def schedule(self) -> None:
        end_of_run = self.warmup + self.duration
        boundaries = [b.start for b in self.buckets] + [end_of_run]  # boundary k+1 starts bucket k
        next_boundary = 0
        i = j = 0
        next_login = 0.5 / self.login_rate if self.login_rate > 0 else math.inf
        self.t0 = time.monotonic() + 0.05
        while True:
            now = time.monotonic() - self.t0
            while next_boundary < len(boundaries) and boundaries[next_boundary] <= now:
                if next_boundary < len(self.buckets):
                    self.buckets[next_boundary].cpu_start = cpu_self()
                if next_boundary > 0:
                    self.buckets[next_boundary - 1].closed = True
                emit({"event": "boundary", "bucket": next_boundary - 1, "t": boundaries[next_boundary]})
                next_boundary += 1
            while True:
                due_decision = i / self.rate
                if due_decision >= end_of_run:
                    due_decision = math.inf
                due = min(due_decision, next_login if next_login < end_of_run else math.inf)
                if due > now:
                    break
                if due == due_decision:
                    self.start(MIX[i % len(MIX)], due)
                    i += 1
                else:
                    self.start("login", due)
                    j += 1
                    next_login = (j + 0.5) / self.login_rate
            if next_boundary >= len(boundaries):
                return
            upcoming = min(
                i / self.rate,
                next_login,
                boundaries[next_boundary],
            )
            await asyncio.sleep(max(0.0, upcoming - (time.monotonic() - self.t0)))

    def start(self, cls: str, due: float) -> None:
        bucket = self.bucket_for(due)
        bucket.pending += 1
        bucket.sent[cls] += 1
        self.totals_sent[cls] += 1
        task = asyncio.create_task(self.one(cls, due, bucket))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def session(self) -> aiohttp.ClientSession:
        self.next_session = (self.next_session + 1) % len(self.sessions)
        return self.sessions[self.next_session]

    # --- one request -----------------------------------------------------------------------------------

    async def one(self, cls: str, due: float, bucket: Bucket) -> None:
        lag = (time.monotonic() - self.t0 - due) * 1000
        bucket.lag.append(lag)
        try:
            if cls == "login":
                cookie = await self.request(cls, bucket, self.t0 + due)
                if cookie:
                    bucket.sent["login_cookie"] += 1
                    self.totals_sent["login_cookie"] += 1
                    await self.request("login_cookie", bucket, time.monotonic(), cookie)
            else:
                await self.request(cls, bucket, self.t0 + due)
        finally:
            bucket.pending -= 1

    def api_key_headers(self) -> dict[str, str]:
        index = self.counter % len(self.keys)
        self.counter += 1
        kid, secret = self.keys[index]
        nonce = max(int(time.time() * 1000), self.last_nonce[index] + 1)  # unique per key, near the clock
        self.last_nonce[index] = nonce
        signature = hmac.digest(secret, f"{nonce}{kid}".encode(), "sha256").hex()
        return {**self.ua_ip, "X-Auth-Apikey": kid, "X-Auth-Nonce": str(nonce), "X-Auth-Signature": signature}

    async def request(self, cls: str, bucket: Bucket, t_from: float, cookie: str = "") -> str:
        """Send one request of ``cls`` and check its answer; returns the new session cookie of a login."""
        session = self.session()
        new_cookie = ""
        problem = ""
        try:
            if cls == "login":
                email = self.emails[self.login_counter % len(self.emails)]
                self.login_counter += 1
                body = {"email": email, "password": self.cfg["password"]}
                async with session.post(self.base + LOGIN_PATH, json=body, headers=self.ua_ip) as resp:
                    data = await resp.read()
                    morsel = resp.cookies.get(COOKIE_NAME)
                    if resp.status != 200 or morsel is None or not morsel.value:
                        problem = f"status {resp.status} {data[:80]!r}"
                    else:
                        new_cookie = morsel.value
            elif cls == "pass":
                async with session.get(self.base + PASS_PATH, headers=self.ua_ip) as resp:
                    data = await resp.read()
                    if resp.status != 200 or "Authorization" in resp.headers:
                        problem = f"status {resp.status} {data[:80]!r}"
            elif cls == "denied":
                async with session.get(self.base + BALANCES_PATH, headers=self.ua_ip) as resp:
                    data = await resp.read()
                    try:
                        denied = resp.status == 401 and json.loads(data) == DENIED_BODY
                    except ValueError:
                        denied = False
                    if not denied:
                        problem = f"status {resp.status} {data[:80]!r}"
            else:
                if cls == "apikey":
                    headers = self.api_key_headers()
                elif cls == "cookie":
                    headers = self.cookie_headers
                else:  # login_cookie
                    headers = {**self.ua_ip, "Cookie": f"{COOKIE_NAME}={cookie}"}
                async with session.get(self.base + BALANCES_PATH, headers=headers) as resp:
                    data = await resp.read()
                    if resp.status != 200 or not resp.headers.get("Authorization", "").startswith(
                        "Bearer ey"
                    ):
                        problem = f"status {resp.status} {data[:80]!r}"
        except TimeoutError:
            problem = "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            problem = f"{type(exc).__name__}: {exc}"[:160]
        latency = (time.monotonic() - t_from) * 1000
        bucket.latency[cls].append(latency)
        if bucket.index >= 0:
            self.measured_latency[cls].append(latency)
        if problem:
            # "cookie: status 503", "apikey: timeout", "pass: ClientOSError: ..."
            kind = f"{cls}: {' '.join(problem.split(' ', 2)[:2]) if problem.startswith('status') else problem[:60]}"
            bucket.errors[kind] += 1
            self.totals_errors[kind] += 1
            sample = f"{cls} (due +{t_from - self.t0:.3f} s): {problem}"
            if len(bucket.error_samples) < ERROR_SAMPLES:
                bucket.error_samples.append(sample)
            if len(self.samples) < ERROR_SAMPLES:
                self.samples.append(sample)
        else:
            bucket.ok[cls] += 1
            self.totals_ok[cls] += 1
            if cls == "denied":
                bucket.denials += 1
                self.totals_denials += 1
        return new_cookie

    # --- reporting -------------------------------------------------------------------------------------

    async def reporter(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            await self.report_ready()

    async def report_ready(self) -> None:
        while self.emitted < len(self.buckets):
            bucket = self.buckets[self.emitted]
            if not bucket.closed or bucket.pending:
                return
            message = bucket.report(cpu_self())
            if bucket.index >= 0:
                self.measured_lag.extend(bucket.lag)
            emit(message)
            bucket.latency = {c: [] for c in CLASSES}  # the summary keeps its own copy
            bucket.lag = []
            self.emitted += 1

    def summary(self) -> dict[str, object]:
        expected: Counter[str] = Counter()
        for cls, n in self.totals_ok.items():
            if cls in DECISION_OF:
                expected[DECISION_OF[cls]] += n
        measured_all = [v for values in self.measured_latency.values() for v in values]
        decisions = [v for c, values in self.measured_latency.items() if c in DECISION_OF for v in values]
        return {
            "event": "summary",
            "sent": dict(self.totals_sent),
            "ok": dict(self.totals_ok),
            "requests": sum(self.totals_sent.values()),
            "errors": sum(self.totals_errors.values()),
            "error_kinds": dict(self.totals_errors),
            "error_samples": self.samples,
            "denials": self.totals_denials,
            "expected_decisions": dict(expected),
            "latency_ms": {c: percentiles(v) for c, v in self.measured_latency.items() if v},
            "latency_all_ms": percentiles(measured_all),
            "latency_decisions_ms": percentiles(decisions),
            "lag_ms": percentiles(self.measured_lag),
            "generator_cpu_s": cpu_self(),
        }


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    uvloop.install()
    asyncio.run(Generator(config).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
