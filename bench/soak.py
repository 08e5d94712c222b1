"""Soak test: minutes of mixed traffic at a fixed rate against ``authz serve --workers 2``.

    python3 bench/soak.py [--duration 300] [--rate 400] [--login-rate 1] [--interval 30] [--warmup 30]
                          [--workers 2] [--json PATH] [--redis-url URL] [--database-url URL] [--keep]

Starts ``authz serve`` in a temporary data directory (SQLite + the private Redis, unless --database-url /
--redis-url), sets up a cookie session, login users and API keys with the CLI and the login endpoint
(bench/run.py's set-up functions), then runs bench/soak_load.py on the virtualenv: an open-loop generator
(asyncio + aiohttp on uvloop) sending, on a fixed timetable, allowed cookie decisions, allowed API-key
decisions (fresh nonce and signature each), denied requests (no credentials), the pass route, and real
logins each followed by a decision with the new cookie.  Latency counts from each request's due time.

Per interval (and for the warm-up): requests, errors, deliberate denials, p50/p99/max latency overall and
per class, the generator's lag, the sidecar's memory (RSS and PSS summed over the serve parent and its
workers; the Redis server apart) and CPU.  At the end: memory at the start (after the warm-up) and at the
end, the error rate, the latency over time, and the sidecar's ``authz_decisions_total`` diffed over the
run against what the generator counted.  Exit status 1 on any error, a counter mismatch or memory growth
beyond the threshold; the figures also go to --json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from run import (
    BENCH,
    CLIENT_IP,
    METRICS_SETTLE_S,
    PASSWORD,
    USER_AGENT,
    VENV_BIN,
    BenchError,
    Managed,
    child_env,
    create_api_keys,
    create_member,
    decision_counts,
    embedded_redis_pid,
    log_summary,
    login,
    start_sidecar,
    stop_stray_redis,
    tree_state,
)

CLASSES = ("cookie", "apikey", "denied", "pass", "login", "login_cookie")
MIX_TEXT = (
    "decisions on a fixed 10-slot cycle: 40 % allowed cookie, 20 % allowed API key, 20 % denied "
    "(no credentials, 401 expected), 20 % pass route; plus logins on their own timetable, each followed "
    "by a decision with the new cookie (login_cookie)"
)
MEMORY_SAMPLES = 5  # memory is read this many times, SAMPLE_GAP_S apart, at each boundary; minimum kept
SAMPLE_GAP_S = 0.15
_TICK = os.sysconf("SC_CLK_TCK")


# --- /proc ------------------------------------------------------------------------------------------------


def group_pids(group: int) -> list[int]:
    """The live processes of a process group (the serve parent and its workers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == group:
            pids.append(int(entry))
    return sorted(pids)


def rss_pss_kb(pid: int) -> tuple[int, int]:
    """(Rss, Pss) in kB from /proc/<pid>/smaps_rollup; (0, 0) if the process is gone."""
    rss = pss = 0
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    for line in text.splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def sample_memory(group: int, redis_pid: int | None) -> dict[str, Any]:
    """Memory of the sidecar (parent + workers) and of its Redis: the minimum of a few quick reads.

    A login hashes the password with argon2 (64 MiB of working memory, in a worker thread, ~0.1 s): a single
    read can land inside one.  The minimum of MEMORY_SAMPLES reads over ~0.6 s leaves such transients out; the
    maximum is kept to show them.
    """
    reads = []
    for n in range(MEMORY_SAMPLES):
        if n:
            time.sleep(SAMPLE_GAP_S)
        per_pid = {pid: rss_pss_kb(pid) for pid in group_pids(group)}
        redis = rss_pss_kb(redis_pid) if redis_pid else (0, 0)
        reads.append((per_pid, redis))
    sidecar_rss = [sum(r for r, _ in per_pid.values()) for per_pid, _ in reads]
    best = min(range(len(reads)), key=lambda n: sidecar_rss[n])
    per_pid, _ = reads[best]
    return {
        "sidecar_rss_mb": sidecar_rss[best] / 1024,
        "sidecar_pss_mb": sum(p for _, p in per_pid.values()) / 1024,
        "sidecar_rss_max_mb": max(sidecar_rss) / 1024,
        "per_process_rss_mb": {str(pid): r / 1024 for pid, (r, _) in per_pid.items()},
        "redis_rss_mb": min(redis[0] for _, redis in reads) / 1024 if redis_pid else None,
        "processes": len(per_pid),
    }


# --- the run ----------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if value < 100 else f"{value:.0f}"


def interval_label(bucket: dict[str, Any], warmup: float) -> str:
    if bucket["bucket"] < 0:
        return "warm-up"
    return f"{bucket['start'] - warmup:4.0f}-{bucket['end'] - warmup:<4.0f}s"


def print_interval(bucket: dict[str, Any], warmup: float, boundary: dict[str, Any] | None) -> None:
    seconds = bucket["end"] - bucket["start"]
    lat, lag = bucket["latency_decisions_ms"], bucket["lag_ms"]
    mem = boundary["memory"] if boundary else {}
    cpu = boundary.get("cpu_pct", {}) if boundary else {}
    print(
        f"  {interval_label(bucket, warmup):11} {bucket['requests']:>7,} {bucket['requests'] / seconds:>7.1f} "
        f"{(bucket['requests'] - bucket['errors']) / seconds:>7.1f} {bucket['errors']:>6} {bucket['denials']:>7,}  {fmt(lat['p50'], 2):>6} {fmt(lat['p99'], 2):>6} "
        f"{fmt(lat['max']):>6}  {fmt(lag['p99'], 2):>6} {fmt(lag['max']):>6}  "
        f"{fmt(mem.get('sidecar_rss_mb')):>7} {fmt(mem.get('sidecar_pss_mb')):>7} {fmt(mem.get('redis_rss_mb')):>6}  "
        f"{fmt(cpu.get('sidecar')):>5} {fmt(cpu.get('redis')):>5} {fmt(cpu.get('generator')):>5}",
        flush=True,
    )


INTERVAL_HEADER = (
    f"  {'interval':11} {'reqs':>7} {'sent/s':>7} {'ok/s':>7} {'errors':>6} {'denials':>7}  {'p50':>6} {'p99':>6} "
    f"{'max':>6}  {'lag99':>6} {'lagmax':>6}  {'RSS MB':>7} {'PSS MB':>7} {'redis':>6}  "
    f"{'%srv':>5} {'%rds':>5} {'%gen':>5}"
)
INTERVAL_NOTE = (
    "  sent/s: requests due in the interval per second (the timetable); ok/s: those answered as expected\n"
    "  (deliberate denials included); p50/p99/max: latency of the decisions (every class but the logins) in\n"
    "  ms, from each request's due time; lag = how late the generator sent requests, ms;\n"
    "  memory at the interval's end: sidecar (serve parent + workers) RSS and PSS sums, Redis RSS;\n"
    "  CPU in % of one core over the interval: sidecar, Redis, generator"
)


def print_class_table(buckets: list[dict[str, Any]], summary: dict[str, Any], warmup: float) -> None:
    present = [c for c in CLASSES if c in summary["latency_ms"]]
    print(
        "\nLatency per class over time, p50 / p99 / max ms (from the due time; login_cookie from its own send):"
    )
    print(f"  {'interval':11} " + " ".join(f"{c:>20}" for c in present))

    def cell(p: dict[str, float | None] | None) -> str:
        if not p:
            return f"{'-':>20}"
        return f"{fmt(p['p50'], 2):>6} /{fmt(p['p99']):>5} /{fmt(p['max']):>5}"

    for bucket in buckets:
        cells = [cell(bucket["latency_ms"].get(c)) for c in present]
        print(f"  {interval_label(bucket, warmup):11} " + " ".join(cells))
    print(f"  {'whole run':11} " + " ".join(cell(summary["latency_ms"][c]) for c in present))


def trend_mb_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 3:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Soak test of the authz sidecar: mixed traffic at a fixed rate."
    )
    parser.add_argument("--duration", type=float, default=300.0, help="measured seconds (default 300)")
    parser.add_argument(
        "--rate",
        type=float,
        default=400.0,
        help="decision requests per second, fixed timetable (default 400)",
    )
    parser.add_argument(
        "--login-rate", type=float, default=1.0, help="logins per second, each + one decision (default 1)"
    )
    parser.add_argument(
        "--interval", type=float, default=30.0, help="reporting interval, seconds (default 30)"
    )
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="seconds of the same traffic before the start (default 30)"
    )
    parser.add_argument("--workers", type=int, default=2, help="sidecar workers (default 2)")
    parser.add_argument("--api-keys", type=int, default=4, help="API keys the API-key requests rotate over")
    parser.add_argument("--login-users", type=int, default=2, help="members the logins rotate over")
    parser.add_argument(
        "--connections", type=int, default=8, help="client connection pools, requests spread round-robin"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout, seconds (default 5)")
    parser.add_argument(
        "--max-growth-mb",
        type=float,
        default=20.0,
        help="fail when the sidecar's RSS grew by more than this many MB after the warm-up ... (default 20)",
    )
    parser.add_argument(
        "--max-growth-pct", type=float, default=5.0, help="... and by more than this %% (default 5)"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--redis-url", help="use this Redis instead of a private one (a fresh key namespace)")
    parser.add_argument("--database-url", help="use this database instead of SQLite in the temp data dir")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir (logs)")
    args = parser.parse_args(argv)
    if min(args.duration, args.rate, args.interval, args.workers, args.api_keys, args.login_users) <= 0:
        parser.error("--duration, --rate, --interval, --workers, --api-keys, --login-users must be positive")
    if args.warmup <= 0 or args.login_rate < 0 or args.connections < 1:
        parser.error("--warmup must be positive, --login-rate not negative, --connections at least 1")
    return args


class Soak:
    def __init__(self, args: argparse.Namespace, sidecar: Managed, redis_pid: int | None, tmp: Path) -> None:
        self.args = args
        self.sidecar = sidecar
        self.group = sidecar.popen.pid
        self.redis_pid = redis_pid
        self.tmp = tmp
        self.boundaries: dict[int, dict[str, Any]] = {}
        self.buckets: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self.generator: subprocess.Popen[str] | None = None
        self._last_cpu: tuple[float, dict[str, float]] | None = None

    def cpu_now(self) -> dict[str, float]:
        pids = {
            "sidecar": group_pids(self.group),
            "redis": [self.redis_pid] if self.redis_pid else [],
            "generator": [self.generator.pid] if self.generator else [],
        }
        return {name: cpu_s(p) for name, p in pids.items()}

    def on_boundary(self, k: int, t: float) -> None:
        now, cpu = time.monotonic(), self.cpu_now()
        record: dict[str, Any] = {"bucket": k, "t": t, "memory": sample_memory(self.group, self.redis_pid)}
        record["worker_cpu_s"] = {str(pid): cpu_s([pid]) for pid in group_pids(self.group)}
        if self._last_cpu is not None:
            then, before = self._last_cpu
            record["cpu_pct"] = {n: 100 * (cpu[n] - before[n]) / (now - then) for n in cpu}
        self._last_cpu = (now, cpu)
        self.boundaries[k] = record

    def run(self, config: dict[str, Any]) -> None:
        path = self.tmp / "soak-config.json"
        path.write_text(json.dumps(config))
        python = str(VENV_BIN / "python")
        self.generator = subprocess.Popen(
            [python, str(BENCH / "soak_load.py"), str(path)],
            stdout=subprocess.PIPE,
            stderr=open(self.tmp / "generator.log", "wb"),  # noqa: SIM115 - lives as long as the child
            text=True,
            start_new_session=True,
        )
        assert self.generator.stdout is not None
        warmup = self.args.warmup
        for line in self.generator.stdout:
            message = json.loads(line)
            event = message["event"]
            if event == "boundary":
                self.on_boundary(message["bucket"], message["t"])
                if not self.sidecar.alive():
                    raise BenchError(f"authz serve died:\n{self.sidecar.log_tail()}")
            elif event == "bucket":
                self.buckets.append(message)
                print_interval(message, warmup, self.boundaries.get(message["bucket"] + 1))
            elif event == "summary":
                self.summary = message
        code = self.generator.wait()
        if code != 0 or not self.summary:
            tail = (self.tmp / "generator.log").read_text(errors="replace")[-2000:]
            raise BenchError(f"the load generator failed ({code}):\n{tail}")

    def stop_generator(self) -> None:
        if self.generator is not None and self.generator.poll() is None:
            try:
                os.killpg(self.generator.pid, signal.SIGTERM)
                self.generator.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.generator.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.generator.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    tmp = Path(tempfile.mkdtemp(prefix="authz-soak-"))
    data_dir = tmp / "data"
    env = child_env(data_dir, args)
    total_rate = args.rate + 2 * args.login_rate
    print(
        f"authz soak: {args.workers} workers, {args.rate:g} decisions/s + {args.login_rate:g} logins/s "
        f"(+ {args.login_rate:g} decisions/s with their cookies) = {total_rate:g} requests/s on a fixed "
        f"timetable;\nwarm-up {args.warmup:g} s, then {args.duration:g} s in {args.interval:g} s intervals; "
        f"CPUs {sorted(os.sched_getaffinity(0))} (of {os.cpu_count()}), shared by the generator, the "
        f"sidecar and Redis; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"mix: {MIX_TEXT}")
    print(tree_state())
    storage = "" if args.redis_url or args.database_url else " (SQLite + private Redis)"
    print(f"data in {tmp}{storage}", flush=True)

    processes: list[Managed] = []
    redis_pid: int | None = None
    soak: Soak | None = None
    try:
        sidecar = start_sidecar(args.workers, tmp, env, processes)
        redis_pid = None if args.redis_url else embedded_redis_pid(data_dir)
        tag = os.urandom(4).hex()
        emails = [f"soak-{tag}-{n}@example.com" for n in range(args.login_users)]
        for email in emails:
            create_member(env, email)
        cookie = login(sidecar.url, emails[0])
        keys = create_api_keys(env, f"soak-keys-{tag}@example.com", args.api_keys)
        print(
            f"setup done in {time.monotonic() - started:.0f} s: {len(emails)} login users, a cookie session, "
            f"{len(keys)} API keys; sidecar pid {sidecar.popen.pid} "
            f"({len(group_pids(sidecar.popen.pid))} processes), Redis pid {redis_pid or 'external'}\n",
            flush=True,
        )
        config = {
            "base": sidecar.url,
            "cookie": cookie,
            "user_agent": USER_AGENT,
            "client_ip": CLIENT_IP,
            "keys": [{"kid": k.kid, "secret": k.secret} for k in keys],
            "login_emails": emails,
            "password": PASSWORD,
            "rate": args.rate,
            "login_rate": args.login_rate,
            "warmup": args.warmup,
            "duration": args.duration,
            "interval": args.interval,
            "timeout": args.timeout,
            "connections": args.connections,
            "max_connections_per_pool": 64,
        }
        before = decision_counts(sidecar.url)
        soak = Soak(args, sidecar, redis_pid, tmp)
        print(INTERVAL_HEADER)
        print("  " + "-" * (len(INTERVAL_HEADER) - 2), flush=True)
        soak.run(config)
        print(INTERVAL_NOTE)
        time.sleep(METRICS_SETTLE_S)  # the workers fold their tallies into the counters once a second
        after = decision_counts(sidecar.url)
        decisions = {
            f"{r}/{why}": int(v - before.get((r, why), 0.0))
            for (r, why), v in after.items()
            if v - before.get((r, why), 0.0) > 0
        }
        passed = report(args, soak, decisions, sidecar, started)
    except BenchError as exc:
        print(f"\nsoak failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if soak is not None:
            soak.stop_generator()
        if redis_pid is None and not args.redis_url:
            redis_pid = embedded_redis_pid(data_dir)
        for process in reversed(processes):
            process.stop()
        stop_stray_redis(redis_pid, data_dir.resolve())
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if passed else 1


def report(
    args: argparse.Namespace, soak: Soak, decisions: dict[str, int], sidecar: Managed, started: float
) -> bool:
    summary, buckets = soak.summary, soak.buckets
    measured = [b for b in buckets if b["bucket"] >= 0]
    print_class_table(buckets, summary, args.warmup)

    # memory: after the warm-up (boundary 0) and at the end (the last boundary)
    last = max(soak.boundaries)
    start_mem, end_mem = soak.boundaries[0]["memory"], soak.boundaries[last]["memory"]
    growth_mb = end_mem["sidecar_rss_mb"] - start_mem["sidecar_rss_mb"]
    growth_pct = 100 * growth_mb / start_mem["sidecar_rss_mb"]
    pss_growth = end_mem["sidecar_pss_mb"] - start_mem["sidecar_pss_mb"]
    memory_ok = not (growth_mb > args.max_growth_mb and growth_pct > args.max_growth_pct)
    print("\nMemory (minimum of 5 reads over 0.6 s at each point):")
    print(f"  {'':28} {'start':>9} {'end':>9} {'growth':>16}")
    print(
        f"  {'sidecar RSS (parent+workers)':28} {start_mem['sidecar_rss_mb']:>6.1f} MB {end_mem['sidecar_rss_mb']:>6.1f} MB "
        f"{growth_mb:>+7.1f} MB {growth_pct:>+5.1f} %"
    )
    print(
        f"  {'sidecar PSS':28} {start_mem['sidecar_pss_mb']:>6.1f} MB {end_mem['sidecar_pss_mb']:>6.1f} MB "
        f"{pss_growth:>+7.1f} MB {100 * pss_growth / start_mem['sidecar_pss_mb']:>+5.1f} %"
    )
    for pid in start_mem["per_process_rss_mb"]:
        a, b = start_mem["per_process_rss_mb"][pid], end_mem["per_process_rss_mb"].get(pid)
        role = "parent" if int(pid) == soak.group else "worker"
        end_text = f"{b:>6.1f} MB {b - a:>+7.1f} MB" if b is not None else "  (gone)"
        print(f"  {'  ' + role + ' ' + pid:28} {a:>6.1f} MB {end_text}")
    if start_mem["redis_rss_mb"] is not None:
        r0, r1 = start_mem["redis_rss_mb"], end_mem["redis_rss_mb"]
        print(
            f"  {'Redis RSS':28} {r0:>6.1f} MB {r1:>6.1f} MB {r1 - r0:>+7.1f} MB {100 * (r1 - r0) / r0:>+5.1f} %"
        )
    points = [
        (soak.boundaries[k]["t"] - args.warmup, soak.boundaries[k]["memory"]["sidecar_rss_mb"])
        for k in sorted(soak.boundaries)
        if k >= 0
    ]
    print("  sidecar RSS after each interval, MB: " + " ".join(f"{v:.1f}" for _, v in points))
    slope = trend_mb_per_min(points)
    if slope is not None:
        print(f"  least-squares trend over those points: {slope:+.2f} MB/min")
    peak = max(b["memory"]["sidecar_rss_max_mb"] for b in soak.boundaries.values())
    print(f"  highest single read: {peak:.1f} MB")
    verdict = "ok" if memory_ok else "GROWTH"
    print(f"  check: fail if growth > {args.max_growth_mb:g} MB and > {args.max_growth_pct:g} % -> {verdict}")

    # errors and the server's own counters
    requests, errors = summary["requests"], summary["errors"]
    measured_requests = sum(b["requests"] for b in measured)
    measured_errors = sum(b["errors"] for b in measured)
    print(
        f"\nRequests: {requests:,} in all ({measured_requests:,} after the warm-up), "
        f"{summary['denials']:,} deliberate denials (401 authz.invalid_session of the denied class)"
    )
    sent = summary["sent"]
    print("  per class: " + ", ".join(f"{c} {sent.get(c, 0):,}" for c in CLASSES if sent.get(c)))
    rate = 100 * errors / requests if requests else 0.0
    print(f"Errors: {errors} ({rate:.4f} %; {measured_errors} after the warm-up)")
    for kind, n in sorted(summary["error_kinds"].items(), key=lambda item: -item[1]):
        print(f"  {n:>7} x {kind}")
    for sample in summary["error_samples"]:
        print(f"  e.g. {sample}")
    expected = summary["expected_decisions"]
    keys = sorted(set(expected) | set(decisions))
    counters_ok = all(expected.get(k, 0) == decisions.get(k, 0) for k in keys)
    print("Sidecar authz_decisions_total over the run vs the generator's correct answers:")
    for key in keys:
        mark = "" if expected.get(key, 0) == decisions.get(key, 0) else "   MISMATCH"
        print(f"  {key:32} server {decisions.get(key, 0):>9,}  client {expected.get(key, 0):>9,}{mark}")

    lag, lat = summary["lag_ms"], summary["latency_decisions_ms"]
    every, logins = summary["latency_all_ms"], summary["latency_ms"].get("login")
    gen_cpu = summary["generator_cpu_s"]
    elapsed = args.warmup + args.duration
    print(
        f"\nGenerator: lag p50 {fmt(lag['p50'], 2)} / p99 {fmt(lag['p99'], 2)} / max {fmt(lag['max'], 1)} ms "
        f"(after the warm-up); CPU {gen_cpu:.1f} s = {100 * gen_cpu / elapsed:.0f} % of one core"
    )
    print(
        f"Decision latency after the warm-up: p50 {fmt(lat['p50'], 2)} ms, p99 {fmt(lat['p99'], 2)} ms, "
        f"p99.9 {fmt(lat['p999'], 2)} ms, max {fmt(lat['max'], 1)} ms"
    )
    if logins:
        print(
            f"Login latency: p50 {fmt(logins['p50'])} ms, p99 {fmt(logins['p99'])} ms, max {fmt(logins['max'])} ms; "
            f"all requests: p50 {fmt(every['p50'], 2)} ms, p99 {fmt(every['p99'], 2)} ms, max {fmt(every['max'])} ms"
        )
    first, final = soak.boundaries[-1]["worker_cpu_s"], soak.boundaries[last]["worker_cpu_s"]
    split = {pid: final[pid] - first.get(pid, 0.0) for pid in final}
    print(
        "Sidecar CPU over the run by process: "
        + ", ".join(
            f"{'parent' if int(p) == soak.group else 'worker'} {p} {s:.1f} s" for p, s in split.items()
        )
    )
    print(log_summary(sidecar.log_path))
    passed = errors == 0 and counters_ok and memory_ok
    problems = []
    if errors:
        problems.append(f"{errors} error(s)")
    if not counters_ok:
        problems.append("decision counters differ")
    if not memory_ok:
        problems.append("memory growth")
    print(
        f"\nsoak {'PASSED' if passed else 'FAILED: ' + ', '.join(problems)} "
        f"(took {time.monotonic() - started:.0f} s)",
        flush=True,
    )
    if args.json:
        results = {
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "tree": tree_state(),
            "mix": MIX_TEXT,
            "passed": passed,
            "problems": problems,
            "memory": {
                "start": start_mem,
                "end": end_mem,
                "growth_mb": growth_mb,
                "growth_pct": growth_pct,
                "trend_mb_per_min": slope,
                "boundaries": {str(k): v for k, v in sorted(soak.boundaries.items())},
            },
            "decisions_server": decisions,
            "decisions_client": expected,
            "summary": summary,
            "intervals": buckets,
        }
        args.json.write_text(json.dumps(results, indent=1))
        print(f"figures written to {args.json}")
    return passed


if __name__ == "__main__":
    sys.exit(main())
