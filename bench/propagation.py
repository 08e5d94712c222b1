"""How fast an admin change reaches another instance's decision endpoint.

    python bench/propagation.py [--changes N] [--redis-url URL] [--database-url URL]

Starts two ``authz serve`` processes (one worker each) on one database (a SQLite file in a temporary data
directory unless --database-url) and one Redis (the machine's, under a namespace of the run's own), signs
in a superadmin on instance A, then N times: adds a blacklist restriction on an IP through A's admin API
(``POST /api/v2/barong/admin/restrictions`` with the JWT A's decision endpoint minted) and polls B's
decision endpoint with that IP in ``X-Forwarded-For`` until B denies it; then deletes the restriction and
polls until B allows it again.  Prints, for adding and for removing, the admin call's own latency and the
time from its answer to B's first changed decision (median, p90, max).  Standard library only; the servers
and the CLI run on the project's virtualenv.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUTHZ = ROOT / ".venv" / "bin" / "authz"
PASSWORD = "Bench-Passw0rd-42"
USER_AGENT = "Mozilla/5.0 (authz-bench)"
PROBE = "/api/v2/auth/api/v2/barong/public/ping"  # a pass route: only restrictions can deny it
RESTRICTIONS = "/api/v2/barong/admin/restrictions"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Client:
    """One keep-alive connection to an instance."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def request(
        self, method: str, path: str, body: object = None, **headers: str
    ) -> http.client.HTTPResponse:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"User-Agent": USER_AGENT, **headers}
        if data is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        return response


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"instance on port {port} exited with {process.returncode}")
        try:
            if Client(port).request("GET", "/readyz").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"instance on port {port} not ready after 60 s")


def until(client: Client, ip: str, denied: bool) -> float:
    """Poll the probe from ``ip`` until it is (or is no longer) denied; the moment it changed."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = client.request("GET", PROBE, **{"X-Forwarded-For": ip}).status
        if (status != 200) == denied:
            return time.perf_counter()
    sys.exit(f"instance B did not apply the change for {ip} within 10 s")


def summary(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"{label:38} median {statistics.median(values) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   "
        f"max {ordered[-1] * 1000:7.1f} ms"
    )


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--changes", type=int, default=50)
    options.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    options.add_argument("--database-url", default="")
    args = options.parse_args()

    data = Path(tempfile.mkdtemp(prefix="authz-propagation-"))
    env = {
        **os.environ,
        "AUTHZ_DATA_DIR": str(data),
        "REDIS_URL": args.redis_url,
        "AUTHZ_REDIS_NAMESPACE": f"bench{secrets.token_hex(4)}",
        "AUTHZ_SESSION_COOKIE_SECURE": "false",
        "AUTHZ_LOG_LEVEL": "warning",
    }
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    email = f"admin-{secrets.token_hex(3)}@bench.local"
    # --create: the servers are not started yet, so this command makes the data dir's database.
    admin = ["users", "create", "--create", "--email", email, "--password", PASSWORD, "--role", "superadmin"]
    subprocess.run([AUTHZ, *admin], env=env, check=True, stdout=subprocess.DEVNULL)
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [AUTHZ, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], env=env
        )
        for port in ports
    ]
    try:
        for port, server in zip(ports, servers, strict=True):
            wait_ready(port, server)
        a, b = Client(ports[0]), Client(ports[1])
        login = a.request("POST", "/api/v2/barong/identity/sessions", {"email": email, "password": PASSWORD})
        assert login.status == 200, login.body  # type: ignore[attr-defined]
        cookie = login.getheader("Set-Cookie", "").split(";", 1)[0]
        csrf = json.loads(login.body)["csrf_token"]  # type: ignore[attr-defined]

        def admin(method: str, path: str, body: object = None) -> http.client.HTTPResponse:
            """The admin call as a gateway makes it: A's decision, then the call with A's JWT."""
            decision = a.request(method, "/api/v2/auth" + path, Cookie=cookie, **{"X-CSRF-Token": csrf})
            assert decision.status == 200, decision.body  # type: ignore[attr-defined]
            return a.request(method, path, body, Authorization=decision.getheader("Authorization", ""))

        added, removed, add_calls, remove_calls = [], [], [], []
        for i in range(args.changes):
            ip = f"198.51.100.{i % 250 + 1}"
            started = time.perf_counter()
            created = admin("POST", RESTRICTIONS, {"category": "blacklist", "scope": "ip", "value": ip})
            answered = time.perf_counter()
            assert created.status == 201, created.body  # type: ignore[attr-defined]
            added.append(until(b, ip, denied=True) - answered)
            add_calls.append(answered - started)
            restriction = json.loads(created.body)["id"]  # type: ignore[attr-defined]
            started = time.perf_counter()
            deleted = admin("DELETE", f"{RESTRICTIONS}?id={restriction}")
            answered = time.perf_counter()
            assert deleted.status == 204, deleted.body  # type: ignore[attr-defined]
            removed.append(until(b, ip, denied=False) - answered)
            remove_calls.append(answered - started)
        print(f"{args.changes} restrictions added on A and removed; B applies them (1 worker each)")
        print(summary("add: A's decision + admin call", add_calls))
        print(summary("add: A answered → B denies", added))
        print(summary("remove: A's decision + admin call", remove_calls))
        print(summary("remove: A answered → B allows", removed))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
