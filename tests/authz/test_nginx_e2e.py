"""Real nginx in front of the sidecar and an upstream, with the shipped ``nginx/nginx.conf``.

nginx (Debian's package, installed when missing) runs as a subprocess on loopback with a config generated
from the shipped one (ports, log and temp paths substituted); the sidecar is the whole app on a real port;
the upstream verifies the JWT with ``authz.upstream`` against the sidecar's JWKS and echoes what it got.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from authz.app import build_app
from authz.settings import PROJECT_ROOT, Settings
from authz.upstream import CLAIMS, JwksKeys, jwt_middleware
from identity.http.admin.console import ROOT as CONSOLE_ROOT
from identity.http.admin.console import load_assets
from identity.models import Restriction
from identity.restrictions import validate_restriction
from tests.authz.helpers import api_key_headers, eventually, fast_settings, new_user, now_ms

SHIPPED = PROJECT_ROOT / "nginx" / "nginx.conf"
UA = "Mozilla/5.0 (X11; Linux x86_64) NginxTests"
PRIVATE = "/api/v2/peatio/account/balances"
LARGE = 8 * 1024 * 1024

#: One backend is enough here: the storage is tested on both elsewhere, this is about the proxy.
ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Debian's nginx; installed with apt-get when missing (package lists refreshed only if that fails)."""
    found = _nginx()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "nginx"]
        if subprocess.run(install, check=False, env=env, capture_output=True, timeout=300).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True, timeout=300)
            subprocess.run(install, check=False, env=env, capture_output=True, timeout=300)
        found = _nginx()
    if found is None:
        pytest.skip("nginx is not installed and could not be installed with apt-get (needs root and a mirror)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def nginx_config(shipped: str, directory: Path, *, port: int, sidecar: int, upstream: int) -> str:
    """The shipped config on loopback ports, with logs and temporary files under ``directory``."""
    local = (
        f"access_log {directory}/access.log;\n"
        + "".join(
            f"    {name}_temp_path {directory}/{name};\n"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
    )
    substitutions = {
        "worker_processes auto;": "worker_processes 1;",
        "server authz:8080;": f"server 127.0.0.1:{sidecar};",
        "server app:8000;": f"server 127.0.0.1:{upstream};",
        "listen 80;": f"listen 127.0.0.1:{port};",
        "http {\n": "http {\n    " + local,
    }
    for old, new in substitutions.items():
        assert shipped.count(old) == 1, f"the shipped config no longer has exactly one {old!r}"
        shipped = shipped.replace(old, new)
    return shipped


@dataclass
class Nginx:
    """One nginx master process (daemon off) serving a generated config."""

    binary: str
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, *, sidecar: int, upstream: int) -> Nginx:
        config = self.directory / "nginx.conf"
        config.write_text(
            nginx_config(SHIPPED.read_text(), self.directory, port=self.port, sidecar=sidecar, upstream=upstream)
        )
        # Workers would switch to `nobody`, who cannot enter pytest's private temporary directory.
        user = "user root; " if os.geteuid() == 0 else ""
        directives = f"daemon off; master_process on; {user}pid {self.directory}/nginx.pid; error_log {self.directory}/error.log info;"
        command = [self.binary, "-p", str(self.directory), "-c", str(config), "-g", directives]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"nginx exited: {self.process.stderr.read().decode() if self.process.stderr else ''}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        pytest.fail("nginx did not listen within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Seen:
    """What the upstream received."""

    requests: list[dict[str, Any]] = field(default_factory=list)


def upstream_app(jwks_url: str, seen: Seen) -> web.Application:
    keys = JwksKeys(jwks_url, min_refresh_interval=0.0)

    async def echo(request: web.Request) -> web.Response:
        digest, length = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(65536):
            digest.update(chunk)
            length += len(chunk)
        record = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "authorization": request.headers.get("Authorization"),
            "claims": request.get(CLAIMS),
            "length": length,
            "sha256": digest.hexdigest(),
        }
        seen.requests.append(record)
        return web.json_response(record)

    app = web.Application(
        middlewares=[jwt_middleware(keys, public=lambda request: "/public/" in request.path)]
    )
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@dataclass
class Gateway:
    url: str
    seen: Seen
    services: Any
    clock: Any
    http: aiohttp.ClientSession
    #: Every request the sidecar answered: (raw target, the X-Original-URI it was asked to decide, if any).
    sidecar_seen: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return fast_settings(settings)


@pytest.fixture
def nginx_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "nginx"
    directory.mkdir()
    yield directory


@pytest.fixture
async def gateway(
    aiohttp_server: Any, nginx_binary: str, nginx_dir: Path, settings: Settings, services: Any, clock: Any
) -> AsyncIterator[Gateway]:
    sidecar_app = build_app(settings, settings.redis_url, clock=clock)
    sidecar_seen: list[tuple[str, str | None]] = []

    async def record(request: web.Request, _response: web.StreamResponse) -> None:
        sidecar_seen.append((request.raw_path, request.headers.get("X-Original-URI")))

    sidecar_app.on_response_prepare.append(record)
    sidecar = await aiohttp_server(sidecar_app, host="127.0.0.1")
    seen = Seen()
    upstream = await aiohttp_server(
        upstream_app(f"http://127.0.0.1:{sidecar.port}/.well-known/jwks.json", seen), host="127.0.0.1"
    )
    nginx = Nginx(nginx_binary, nginx_dir)
    await asyncio.to_thread(nginx.start, sidecar=sidecar.port, upstream=upstream.port)
    http = aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=20), headers={"User-Agent": UA}
    )
    try:
        yield Gateway(f"http://127.0.0.1:{nginx.port}", seen, services, clock, http, sidecar_seen, nginx.port)
    finally:
        await http.close()
        await asyncio.to_thread(nginx.stop)


async def login(gateway: Gateway, email: str, password: str) -> tuple[str, str]:
    async with gateway.http.post(
        gateway.url + "/api/v2/barong/identity/sessions", json={"email": email, "password": password}
    ) as response:
        assert response.status == 200, await response.text()
        return response.cookies["_barong_session"].value, (await response.json())["csrf_token"]


@ON_POSTGRESQL
async def test_cookie_login_and_an_allowed_request_reach_the_upstream_with_a_verified_jwt(
    gateway: Gateway, make_user: Any
) -> None:
    account = await make_user()
    cookie, _ = await login(gateway, account.user.email, account.password)
    headers = {"Cookie": f"_barong_session={cookie}"}
    async with gateway.http.get(gateway.url + PRIVATE + "?currency=btc", headers=headers) as response:
        assert response.status == 200, await response.text()
        echoed = await response.json()
    assert echoed["path"] == PRIVATE and echoed["query"] == "currency=btc"
    assert echoed["authorization"].startswith("Bearer ")
    assert echoed["claims"]["uid"] == account.user.uid
    assert echoed["claims"]["sub"] == "session" and echoed["claims"]["email"] == account.user.email


@ON_POSTGRESQL
async def test_the_identity_api_behind_nginx_gets_the_jwt_too(gateway: Gateway, make_user: Any) -> None:
    account = await make_user()
    cookie, _ = await login(gateway, account.user.email, account.password)
    headers = {"Cookie": f"_barong_session={cookie}"}
    async with gateway.http.get(gateway.url + "/api/v2/barong/resource/users/me", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["email"] == account.user.email
    assert gateway.seen.requests == []


@ON_POSTGRESQL
async def test_post_without_csrf_token_is_401_with_barongs_body(gateway: Gateway, make_user: Any) -> None:
    account = await make_user()
    cookie, _ = await login(gateway, account.user.email, account.password)
    headers = {"Cookie": f"_barong_session={cookie}"}
    async with gateway.http.post(gateway.url + "/api/v2/peatio/market/orders", headers=headers, json={}) as response:
        assert response.status == 401
        assert response.headers["Content-Type"].startswith("application/json")
        assert await response.json() == {"errors": ["authz.missing_csrf_token"]}
    assert gateway.seen.requests == []


@ON_POSTGRESQL
async def test_maintenance_restriction_reaches_the_client_as_471(gateway: Gateway) -> None:
    services = gateway.services
    await services.restrictions.add(Restriction("maintenance", "all", "all", 471))
    await services.changes.restrictions_changed()

    async def probe() -> tuple[int, Any]:
        async with gateway.http.get(gateway.url + "/api/v2/peatio/public/markets") as response:
            return response.status, await response.json(content_type=None)

    assert (await eventually(probe, lambda result: result[0] == 471, within=5.0))[0] == 471
    passed = len(gateway.seen.requests)  # before the change reached the sidecar
    assert await probe() == (471, {"errors": ["authz.restrict.maintenance"]})
    assert len(gateway.seen.requests) == passed


@ON_POSTGRESQL
async def test_api_key_request_reaches_the_upstream_as_its_holder(gateway: Gateway) -> None:
    holder = await new_user(gateway.services, otp=True)
    key = await gateway.services.api_keys.create(holder_id=holder.id, algorithm="HS256")
    headers = api_key_headers(key, now_ms(gateway.clock), user_agent=UA)
    async with gateway.http.get(gateway.url + PRIVATE, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["claims"]["uid"] == holder.uid


@ON_POSTGRESQL
async def test_forged_authorization_on_a_public_route_never_reaches_the_upstream(gateway: Gateway) -> None:
    headers = {"Authorization": "Bearer forged"}
    async with gateway.http.get(gateway.url + "/api/v2/peatio/public/markets", headers=headers) as response:
        assert response.status == 200, await response.text()
        echoed = await response.json()
    assert echoed["authorization"] is None and echoed["claims"] is None


@ON_POSTGRESQL
async def test_large_bodies_pass_and_do_not_stall_the_auth_subrequest(gateway: Gateway, make_user: Any) -> None:
    account = await make_user()
    cookie, csrf = await login(gateway, account.user.email, account.password)
    body = os.urandom(LARGE)
    headers = {"Cookie": f"_barong_session={cookie}", "X-CSRF-Token": csrf, "Content-Type": "application/octet-stream"}
    async with gateway.http.post(gateway.url + "/api/v2/peatio/market/orders", data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        echoed = await response.json()
    assert echoed["length"] == LARGE and echoed["sha256"] == hashlib.sha256(body).hexdigest()
    assert echoed["claims"]["uid"] == account.user.uid

    refused = {"Cookie": f"_barong_session={cookie}", "Content-Type": "application/octet-stream"}
    async with gateway.http.post(gateway.url + "/api/v2/peatio/market/orders", data=body, headers=refused) as response:
        assert response.status == 401
        assert await response.json() == {"errors": ["authz.missing_csrf_token"]}
    assert len(gateway.seen.requests) == 1


async def test_a_sidecar_that_does_not_answer_fails_closed(nginx_binary: str, nginx_dir: Path) -> None:
    nginx = Nginx(nginx_binary, nginx_dir)
    await asyncio.to_thread(nginx.start, sidecar=free_port(), upstream=free_port())
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{nginx.port}{PRIVATE}") as response:
            assert response.status == 503
            assert await response.json() == {"errors": ["authz.unavailable"]}
    finally:
        await asyncio.to_thread(nginx.stop)


@ON_POSTGRESQL
async def test_the_jwks_is_published_through_nginx_without_a_decision(gateway: Gateway) -> None:
    async with gateway.http.get(gateway.url + "/.well-known/jwks.json") as response:
        assert response.status == 200
        assert [key["alg"] for key in (await response.json())["keys"]] == ["RS256"]


# --- the client's address: nginx is the edge, and says who its peer is -----------------------------------


@ON_POSTGRESQL
async def test_a_blacklisted_client_is_refused_whatever_x_forwarded_for_it_sends(gateway: Gateway) -> None:
    """nginx's peer (127.0.0.1 here) is the client: a forged ``X-Forwarded-For`` is overwritten, not kept."""
    await gateway.services.restrictions.add(validate_restriction("blacklist", "ip", "127.0.0.1"))
    await gateway.services.changes.restrictions_changed()

    async def probe(**headers: str) -> tuple[int, Any]:
        url = gateway.url + "/api/v2/peatio/public/markets"
        async with gateway.http.get(url, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    refused = (401, {"errors": ["authz.restrict.blacklist"]})
    assert await eventually(probe, lambda result: result == refused, within=5.0) == refused
    passed = len(gateway.seen.requests)  # before the restriction reached the sidecar
    for forged in ("8.8.8.8", "8.8.8.8, 10.0.0.1", "unknown, 8.8.8.8"):
        assert await probe(**{"X-Forwarded-For": forged}) == refused, forged
    assert len(gateway.seen.requests) == passed


@ON_POSTGRESQL
async def test_rotating_x_forwarded_for_does_not_dodge_the_per_ip_login_throttle(
    gateway: Gateway, settings: Settings
) -> None:
    """Failed logins for different e-mails (so the per-account limiter never trips), each with another forged
    address: all of them count against nginx's peer, and the one past ``ip.login``'s limit is 429."""
    limit = settings.login_max_attempts_ip
    statuses = []
    for attempt in range(limit + 5):
        body = {"email": f"nobody{attempt}@example.com", "password": "Wrong-passw0rd"}
        headers = {"X-Forwarded-For": f"198.51.100.{attempt + 1}"}
        async with gateway.http.post(
            gateway.url + "/api/v2/barong/identity/sessions", json=body, headers=headers
        ) as response:
            statuses.append(response.status)
    assert statuses == [401] * limit + [429] * 5


# --- no location forwards a target that skips the decision -----------------------------------------------


async def raw_get(gateway: Gateway, target: str) -> tuple[int, bytes]:
    """``GET target`` sent byte for byte (HTTP clients would normalise or re-encode it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    head = f"GET {target} HTTP/1.1\r\nHost: x\r\nUser-Agent: {UA}\r\nConnection: close\r\n\r\n"
    writer.write(head.encode())
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


#: Targets that nginx normalises (``%2F`` decoded, dot segments removed) into a location that skips the check
#: (the console's, the JWKS) while their raw form names an identity or admin API handler.
TRAVERSALS = [
    "/api/v2/barong/admin/users/..%2F..%2F..%2F..%2F..%2Fadmin",
    "/api/v2/barong/admin/users/..%2F..%2F..%2F..%2F..%2Fadmin%2F",
    "/api/v2/barong/admin/users/..%2F..%2F..%2F..%2F..%2Fadmin%2Fx",
    "/api/v2/barong/admin/users/..%2F..%2F..%2F..%2F..%2Fadmin%2Fconsole.js",
    "/api/v2/barong/admin/users/..%2F..%2F..%2F..%2F..%2F.well-known%2Fjwks.json",
    "/api/v2/barong/resource/users/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/admin/x",
]


@ON_POSTGRESQL
@pytest.mark.parametrize("target", TRAVERSALS)
async def test_a_target_normalising_into_an_unchecked_location_reaches_no_handler_undecided(
    gateway: Gateway, target: str
) -> None:
    await raw_get(gateway, target)
    handled = [raw for raw, _ in gateway.sidecar_seen if not raw.startswith("/_authz/nginx")]
    decided = [original for raw, original in gateway.sidecar_seen if raw == "/_authz/nginx"]
    # Either the sidecar decided on this very target, or what it served was a fixed file, never the target.
    assert target in decided or target not in handled, gateway.sidecar_seen


def test_only_the_console_files_and_the_jwks_skip_the_check_each_forwarding_a_fixed_target() -> None:
    """Read from the shipped file: every location with ``auth_request off`` that a client can reach is an
    exact one for a file the sidecar serves, and forwards that file's path rather than the raw target."""
    locations = re.findall(r"location\s+([^{]+?)\s*\{([^}]*)\}", SHIPPED.read_text())
    unchecked = [
        (spec, body)
        for spec, body in locations
        if "auth_request off;" in body and not spec.startswith("@") and "internal;" not in body
    ]
    console = [CONSOLE_ROOT, *(asset.url for asset in load_assets())]
    assert [spec for spec, _ in unchecked] == [f"= {path}" for path in [*console, "/.well-known/jwks.json"]]
    for spec, body in unchecked:
        assert f"proxy_pass http://authz{spec.removeprefix('= ')};" in body, spec


@ON_POSTGRESQL
async def test_the_console_files_are_served_without_a_decision_and_nothing_else_under_admin(
    gateway: Gateway,
) -> None:
    for asset in load_assets():
        async with gateway.http.get(gateway.url + asset.url) as response:
            assert (response.status, await response.read()) == (200, asset.body), asset.url
    async with gateway.http.get(gateway.url + "/admin", allow_redirects=False) as response:
        assert response.status == 302 and response.headers["Location"] == "/admin/"
    assert all(raw != "/_authz/nginx" for raw, _ in gateway.sidecar_seen)

    # Anything else under /admin is an ordinary request: decided first (anonymous: refused here).
    async with gateway.http.get(gateway.url + "/admin/x") as response:
        assert response.status == 401
        assert await response.json() == {"errors": ["authz.invalid_session"]}
    assert ("/_authz/nginx", "/admin/x") in gateway.sidecar_seen
    assert gateway.seen.requests == []


@ON_POSTGRESQL
async def test_an_admin_cannot_change_a_role_through_the_stripped_spelling(gateway: Gateway, make_user: Any) -> None:
    """Before, ``POST /api/v2/admin/users/role`` dodged the admin's DROP row (written for
    ``api/v2/barong/admin/users/role``): 201, and another user became an admin."""
    admin = await make_user(role="admin")
    target = await make_user()
    cookie, csrf = await login(gateway, admin.user.email, admin.password)
    headers = {"Cookie": f"_barong_session={cookie}", "X-CSRF-Token": csrf}
    for prefix in ("/api/v2/admin", "/api/v2/barong/admin"):
        async with gateway.http.post(
            gateway.url + prefix + "/users/role", headers=headers, json={"uid": target.user.uid, "role": "admin"}
        ) as response:
            assert response.status == 401, (prefix, await response.text())
            assert await response.json() == {"errors": ["authz.invalid_permission"]}
    changed = await gateway.services.users.get_by_uid(target.user.uid)
    assert changed is not None and changed.role == "member"


@ON_POSTGRESQL
@pytest.mark.parametrize(
    "target",
    [
        "/api/v2/peatio/public/..;/management/x",
        "/api/v2/barong/admin;x/permissions",
        "/api/v2/barong/admin%3Bx/permissions",
        "/api/v2/peatio/public/%252e%252e/management/x",
    ],
)
async def test_path_parameters_and_double_encodings_are_refused_before_the_upstream(
    gateway: Gateway, target: str
) -> None:
    """Before, the first passed as public and the second was decided as an admin path of its own."""
    status, body = await raw_get(gateway, target)
    assert (status, json.loads(body)) == (400, {"errors": ["authz.invalid_path"]})
    assert gateway.seen.requests == []
