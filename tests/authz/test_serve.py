"""``authz serve`` as a real process: the embedded default, restarts, signals, and two instances sharing
one PostgreSQL and one Redis.

The CLI runs in-process (``authz.cli.main``) next to the served processes, on the same data dir or
database, exactly as an operator's shell would.
"""

from __future__ import annotations

import base64
import contextlib
import io
import ipaddress
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from authz.cli import main
from authz.keys import SigningKey
from authz.settings import ENVIRONMENT_VARIABLES, PROJECT_ROOT
from identity.permissions_file import parse_permissions
from tests.identity.helpers import UA, jwt_key_pem

AUTHZ = Path(sys.executable).with_name("authz")
DEFAULT_PERMISSIONS = parse_permissions((PROJECT_ROOT / "policies" / "permissions.yml").read_text())
MEMBERS_PATH = "/api/v2/auth/api/v2/peatio/account/balances"
PUBLIC_PATH = "/api/v2/auth/api/v2/barong/public/ping"
PASSWORD = "Secret-Passw0rd"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SERVICE_VARIABLES = {*ENVIRONMENT_VARIABLES, *(f"{name}_FILE" for name in ENVIRONMENT_VARIABLES)}


def clean_environ(**variables: str) -> dict[str, str]:
    """The test process' environment without any of the service's variables, plus ``variables``."""
    return {**{k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}, **variables}


def children_of(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(stat_file.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Service:
    """One ``authz serve`` process on a free port."""

    data_dir: Path
    environ: dict[str, str]
    port: int = field(default_factory=free_port)
    host: str | None = "127.0.0.1"  # None: no --host, the service's default
    process: subprocess.Popen[bytes] | None = None
    children: list[int] = field(default_factory=list)  # redis-server, when embedded

    def launch(self) -> Service:
        self.log = self.data_dir.parent / f"serve-{self.port}.log"
        self.process = subprocess.Popen(
            [str(AUTHZ), "serve", *(("--host", self.host) if self.host else ()), "--port", str(self.port)],
            env=clean_environ(AUTHZ_DATA_DIR=str(self.data_dir), **self.environ),
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 30.0) -> Service:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"authz serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(OSError):
                if self.get("/readyz").status == 200:
                    self.children = children_of(self.process.pid)
                    return self
            time.sleep(0.05)
        pytest.fail(f"authz serve not ready after {timeout} s:\n{self.log.read_text()}")

    def start(self) -> Service:
        return self.launch().wait_ready()

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> Reply:
        data = None if body is None else orjson.dumps(body)
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        for name, value in {"User-Agent": UA, **(headers or {})}.items():
            request.add_header(name, value)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.headers, error.read())

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signal the process and wait for it; kill whatever is left of it and its children."""
        code = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                code = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self.process is not None:
            code = self.process.returncode
        return code

    def reap_children(self) -> None:
        for pid in self.children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def services_started() -> Iterator[Callable[..., Service]]:
    """``make(data_dir, **environ)`` creates a service; every one is stopped (and its children killed) after."""
    made: list[Service] = []

    def make(data_dir: Path, **environ: str) -> Service:
        service = Service(data_dir, environ)
        made.append(service)
        return service

    yield make
    for service in made:
        service.stop(signal.SIGKILL, timeout=5)
        service.reap_children()


def cli(monkeypatch: pytest.MonkeyPatch, data_dir: Path, *argv: str, **environ: str) -> tuple[int, str]:
    """Run ``authz <argv>`` in this process with the service's environment; returns (exit code, stdout)."""
    with monkeypatch.context() as patch:
        for name in SERVICE_VARIABLES:
            patch.delenv(name, raising=False)
        patch.setenv("AUTHZ_DATA_DIR", str(data_dir))
        for name, value in environ.items():
            patch.setenv(name, value)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(list(argv))
    return code, out.getvalue()


def create_member(monkeypatch: pytest.MonkeyPatch, data_dir: Path, **environ: str) -> str:
    email = f"m{uuid.uuid4().hex[:8]}@example.com"
    code, _ = cli(
        monkeypatch, data_dir, "users", "create", "--email", email, "--password", PASSWORD, **environ
    )
    assert code == 0
    return email


def log_in(service: Service, email: str, headers: dict[str, str] | None = None) -> str:
    reply = service.request(
        "POST", "/api/v2/barong/identity/sessions", headers, {"email": email, "password": PASSWORD}
    )
    assert reply.status == 200, reply.body
    cookie = reply.headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith("_barong_session=")
    return cookie


# --- the embedded default ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service started on an empty data dir with nothing configured at all."""
    service = Service(tmp_path_factory.mktemp("fresh") / "data", {})
    try:
        yield service.start()
    finally:
        service.stop(signal.SIGKILL, timeout=5)
        service.reap_children()


def test_fresh_start_with_nothing_configured_is_ready(fresh: Service) -> None:
    reply = fresh.get("/readyz")
    assert reply.status == 200
    assert reply.json() == {
        "status": "ready",
        "checks": {"redis": "ok", "database": "ok", "invalidation": "ok", "policy": "loaded"},
    }
    assert f"authz listening on http://127.0.0.1:{fresh.port}" in fresh.log.read_text()


def test_fresh_start_keeps_database_keys_and_redis_private_in_the_data_dir(fresh: Service) -> None:
    data = fresh.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert (data / "authz.sqlite3").is_file()
    for secret in ("jwt-private.pem", "encryption.key"):
        assert stat.S_IMODE((data / secret).stat().st_mode) == 0o600, secret
    sock = (data / "redis.sock").stat()
    assert stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o700
    [redis_pid] = fresh.children  # the private Redis, started by the service itself
    assert Path(f"/proc/{redis_pid}/exe").resolve().name == "redis-server"
    assert str(data / "redis.sock") in Path(f"/proc/{redis_pid}/cmdline").read_text()


def test_fresh_start_creates_the_database_and_its_wal_files_owner_only(
    services_started: Callable[..., Service], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    usual = os.umask(0o022)  # the common umask, under which SQLite's own files are readable by everyone
    try:
        service = services_started(data).launch()
    finally:
        os.umask(usual)
    service.wait_ready()
    names = ("authz.sqlite3", "authz.sqlite3-wal", "authz.sqlite3-shm", "jwt-private.pem", "encryption.key")
    modes = {name: stat.S_IMODE((data / name).stat().st_mode) for name in names}
    assert modes == dict.fromkeys(modes, 0o600)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port`` (``/proc/net/tcp`` and ``tcp6``)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    raw = bytes.fromhex(address)  # 32-bit words in the host's (little-endian) order
                    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                    found.add(str(ipaddress.ip_address(packed)))
    return found


def test_without_a_host_the_service_listens_on_loopback_only(
    services_started: Callable[..., Service], tmp_path: Path
) -> None:
    service = services_started(tmp_path / "data")
    service.host = None
    service.start()
    assert listening_addresses(service.port) == {"127.0.0.1"}
    assert f"authz listening on http://127.0.0.1:{service.port}" in service.log.read_text()


def test_fresh_start_publishes_its_generated_key(fresh: Service) -> None:
    reply = fresh.get("/.well-known/jwks.json")
    assert reply.status == 200
    [key] = reply.json()["keys"]
    assert key["kid"] == SigningKey.from_pem((fresh.data_dir / "jwt-private.pem").read_bytes()).kid
    assert "d" not in key


def test_fresh_start_seeds_the_default_permissions(fresh: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    code, exported = cli(monkeypatch, fresh.data_dir, "permissions", "export")
    assert code == 0
    rows = [(p.role, p.verb, p.path, p.action, p.topic) for p in parse_permissions(exported)]
    assert rows == [(p.role, p.verb, p.path, p.action, p.topic) for p in DEFAULT_PERMISSIONS]


def test_cli_beside_the_service_announces_through_the_private_redis(
    fresh: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fresh.get(PUBLIC_PATH).status == 200
    code, out = cli(
        monkeypatch,
        fresh.data_dir,
        "restrictions",
        "add",
        "--category",
        "maintenance",
        "--scope",
        "all",
        "--value",
        "all",
    )
    assert code == 0
    assert wait_until(lambda: fresh.get(PUBLIC_PATH).status == 471, timeout=1.5)
    assert fresh.get(PUBLIC_PATH).json() == {"errors": ["authz.restrict.maintenance"]}
    assert cli(monkeypatch, fresh.data_dir, "restrictions", "remove", out.strip())[0] == 0
    assert wait_until(lambda: fresh.get(PUBLIC_PATH).status == 200, timeout=1.5)


def test_sessions_and_keys_survive_a_restart(
    services_started: Callable[..., Service], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    first = services_started(data).start()
    email = create_member(monkeypatch, data)
    wrong = first.request(
        "POST", "/api/v2/barong/identity/sessions", None, {"email": email, "password": "Nope-0000"}
    )
    assert (wrong.status, wrong.json()) == (401, {"errors": ["identity.session.invalid_params"]})
    cookie = log_in(first, email)
    allowed = first.get(MEMBERS_PATH, {"Cookie": cookie})
    assert allowed.status == 200 and allowed.headers["Authorization"].startswith("Bearer ")
    kid = first.get("/.well-known/jwks.json").json()["keys"][0]["kid"]

    [redis_pid] = first.children
    assert first.stop() == 0
    assert wait_until(lambda: not alive(redis_pid), timeout=5), "SIGTERM must stop the private Redis too"

    second = services_started(data).start()
    assert second.get(MEMBERS_PATH, {"Cookie": cookie}).status == 200
    assert second.get("/.well-known/jwks.json").json()["keys"][0]["kid"] == kid
    assert second.stop() == 0


def test_sigterm_during_start_up_leaves_no_redis_behind(
    services_started: Callable[..., Service], tmp_path: Path
) -> None:
    service = services_started(tmp_path / "data").launch()
    assert service.process is not None
    assert wait_until(lambda: bool(children_of(service.process.pid)), timeout=20, interval=0.005)
    service.children = children_of(service.process.pid)
    service.stop()
    assert wait_until(lambda: not any(alive(pid) for pid in service.children), timeout=5)


def test_killed_service_takes_its_redis_along(
    services_started: Callable[..., Service], tmp_path: Path
) -> None:
    service = services_started(tmp_path / "data").start()
    [redis_pid] = service.children
    service.stop(signal.SIGKILL)
    assert wait_until(lambda: not alive(redis_pid), timeout=5)


# --- two instances, one PostgreSQL, one Redis -------------------------------------------------------

# How fast a change reaches the instances.  The promise is "within a second": the CLI commits to
# PostgreSQL and publishes on Redis before it returns; each instance's listener wakes on the message and
# reloads that policy from SQL (milliseconds).  The extra half second is slack for scheduling three
# busy processes on a shared test machine, and for the 20 ms polling here.  The periodic backstop reload
# runs once a minute, so meeting this deadline can only be the pub/sub path at work.
PROPAGATION_DEADLINE = 1.5


def answers_within(services: list[Service], check: Callable[[Service], bool]) -> list[float]:
    """Seconds until ``check`` holds for each service (polled together); fails past the deadline."""
    began = time.monotonic()
    reached: dict[int, float] = {}
    while len(reached) < len(services) and time.monotonic() - began < PROPAGATION_DEADLINE:
        for index, service in enumerate(services):
            if index not in reached and check(service):
                reached[index] = time.monotonic() - began
        time.sleep(0.02)
    missing = [services[i].port for i in range(len(services)) if i not in reached]
    assert not missing, (
        f"instances on ports {missing} did not apply the change within {PROPAGATION_DEADLINE} s"
    )
    print("propagation delays (s):", [round(reached[i], 3) for i in range(len(services))])
    return [reached[i] for i in range(len(services))]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_cli_changes_reach_every_instance_within_a_second(
    services_started: Callable[..., Service],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    redis_url: str,
) -> None:
    shared = {
        "DATABASE_URL": database_url,  # the `test` database, tables truncated by the fixture
        "REDIS_URL": redis_url,
        "AUTHZ_REDIS_NAMESPACE": f"two{uuid.uuid4().hex[:10]}",
        "AUTHZ_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "AUTHZ_JWT_PRIVATE_KEY": jwt_key_pem(),
    }
    instances = [services_started(tmp_path / name, **shared).launch() for name in ("a", "b")]
    for instance in instances:  # started together on an empty permissions table
        instance.wait_ready()
    code, exported = cli(monkeypatch, tmp_path / "cli", "permissions", "export", **shared)
    assert code == 0
    assert len(parse_permissions(exported)) == len(DEFAULT_PERMISSIONS)  # seeded once, not twice

    email = create_member(monkeypatch, tmp_path / "cli", **shared)
    cookie = log_in(instances[0], email)
    for instance in instances:  # one session store for both
        assert instance.get(MEMBERS_PATH, {"Cookie": cookie}).status == 200

    policy = tmp_path / "policy.yml"
    policy.write_text(
        "permissions:\n  - { role: member, verb: GET, path: api/v2/peatio/public, action: ACCEPT }\n"
        "  - { role: superadmin, verb: ALL, path: api/v2/barong/admin, action: ACCEPT }\n"  # may not be lost
    )
    assert (
        cli(monkeypatch, tmp_path / "cli", "permissions", "import", "--replace", str(policy), **shared)[0]
        == 0
    )
    answers_within(
        instances,
        lambda s: (
            (r := s.get(MEMBERS_PATH, {"Cookie": cookie})).status == 401
            and r.json() == {"errors": ["authz.invalid_permission"]}
        ),
    )

    blocked = {"X-Forwarded-For": "81.2.69.10"}
    for instance in instances:
        assert instance.get(PUBLIC_PATH, blocked).status == 200
    argv = ("restrictions", "add", "--category", "blacklist", "--scope", "ip", "--value", "81.2.69.10")
    assert cli(monkeypatch, tmp_path / "cli", *argv, **shared)[0] == 0
    answers_within(
        instances,
        lambda s: (
            (r := s.get(PUBLIC_PATH, blocked)).status == 401
            and r.json() == {"errors": ["authz.restrict.blacklist"]}
        ),
    )
    for instance in instances:
        assert instance.get(PUBLIC_PATH, {"X-Forwarded-For": "81.2.69.11"}).status == 200
