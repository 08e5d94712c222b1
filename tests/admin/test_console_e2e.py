"""The admin console at ``/admin/``, end to end in a real headless Chromium (Debian's ``chromium`` package,
driven by Playwright's Python package; no browser download).

The whole app listens on a real TCP port; the page signs in through its form and calls the admin API with no
gateway in front, so it asks the decision endpoint for the bearer JWT itself (console.js ``call``); one test
puts a stand-in for the Envoy gateway in front, where the page never has to.  What the browser does is checked
from outside the browser: in SQL, and at the decision endpoint (a restriction added through the page denies
the blacklisted IP; removed, it no longer does).

These tests run on SQLite only: they test the page, and the storage behind the endpoints it calls is tested
on both backends by the API tests (test_permissions.py, test_restrictions.py, test_users*.py).  On both
backends the browser tests would double the time of this file for nothing more.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from identity.db import permissions, restrictions, users
from identity.totp import code_at
from tests.identity.helpers import wrong_totp

playwright_api = pytest.importorskip("playwright.async_api", reason="Playwright is in the test extras")

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
BLACKLISTED = "203.0.113.7"
PUBLIC_PATH = "/api/v2/auth/api/v2/barong/identity/configs"  # a pass rule: only restrictions can deny it
UI_TIMEOUT_MS = 5000

# SQLite only: see the module docstring.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _find_chromium() -> str | None:
    for path in (os.environ.get("AUTHZ_TEST_CHROMIUM"), *CHROMIUM_PATHS, shutil.which("chromium")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def _apt_lists_present() -> bool:
    return any(Path("/var/lib/apt/lists").glob("*_Packages*"))


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable; installed from Debian's ``chromium`` package when missing and allowed to."""
    found = _find_chromium()
    if found:
        return found
    apt_get = shutil.which("apt-get")
    if not apt_get or os.geteuid() != 0:
        pytest.skip("no Chromium (/usr/bin/chromium) and cannot install it: apt-get install chromium as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [apt_get, *args], env=env, check=False, capture_output=True, text=True, timeout=900
        )

    # The package lists are refreshed once, only when the install cannot do without (none, or outdated).
    install = apt("install", "-y", "chromium") if _apt_lists_present() else None
    if install is None or install.returncode != 0:
        apt("update")
        install = apt("install", "-y", "chromium")
    found = _find_chromium()
    if not found:
        pytest.skip(
            f"Chromium could not be installed: apt-get exited {install.returncode}: {install.stderr[-500:]}"
        )
    return found


class Console:
    """The page in the browser, and the app under test beside it."""

    def __init__(self, page: Any, client: Any, services: Any, problems: list[str]) -> None:
        self.page = page
        self.client = client
        self.services = services
        self.problems = problems

    @property
    def url(self) -> str:
        return str(self.client.make_url("/admin/"))

    def expect(self, selector: str) -> Any:
        return playwright_api.expect(self.page.locator(selector))

    async def sign_in(self, account: Any, otp_code: str | None = None) -> None:
        await self.page.goto(self.url)
        await self.page.fill("#sign-in-email", account.user.email)
        await self.page.fill("#sign-in-password", account.password)
        if otp_code is not None:
            await self.page.fill("#sign-in-otp", otp_code)
        await self.page.click("#sign-in-submit")

    async def signed_in(self, account: Any) -> None:
        await self.expect("#account-email").to_have_text(account.user.email)
        await self.expect("#console").to_be_visible()
        await self.expect("#permissions-table tbody tr").not_to_have_count(0)

    async def error_shown(self, text: str) -> None:
        await self.expect("#error").to_be_visible()
        await self.expect("#error").to_contain_text(text)

    async def row(self, table: str, column: str, value: str) -> Any:
        """The one row of ``table`` whose ``column`` cell reads ``value`` (waits for it)."""
        exact = re.compile(f"^{re.escape(value)}$")
        row = self.page.locator(f"#{table}-table tbody tr").filter(
            has=self.page.locator(f"td.{column}", has_text=exact)
        )
        await playwright_api.expect(row).to_have_count(1)
        return row

    async def sql(self, table: Any, **where: Any) -> list[Any]:
        query = select(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        async with self.services.engine.connect() as conn:
            return list((await conn.execute(query)).mappings())


@pytest.fixture
async def console(chromium: str, make_client: Any, services: Any) -> AsyncIterator[Console]:
    client = await make_client()
    problems: list[str] = []
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            playwright_api.expect.set_options(timeout=UI_TIMEOUT_MS)
            page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))

            def on_console(message: Any) -> None:
                # Failed API calls are logged as errors too (expected); a CSP violation must never happen.
                if "Content Security Policy" in message.text or "Refused to" in message.text:
                    problems.append(message.text)

            page.on("console", on_console)
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            console = Console(page, client, services, problems)
            yield console
        finally:
            await browser.close()
    assert problems == [], problems


async def within_one_second(check: Callable[[], Awaitable[bool]]) -> None:
    """Changes are applied by the decision endpoint through an asynchronous policy reload: within a second."""
    deadline = asyncio.get_running_loop().time() + 1.0
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not applied within one second"
        await asyncio.sleep(0.02)


async def decision_from(client: Any, ip: str) -> tuple[int, Any]:
    response = await client.get(PUBLIC_PATH, headers={"X-Forwarded-For": ip, "User-Agent": "test"})
    return response.status, (await response.json() if response.status != 200 else None)


# ------------------------------------------------------------------------------------------------------------
# The static page (no browser needed).


async def test_console_is_served_with_security_headers(make_client: Any) -> None:
    client = await make_client()
    redirect = await client.get("/admin", allow_redirects=False)
    assert redirect.status == 302
    assert redirect.headers["Location"] == "/admin/"

    page = await client.get("/admin/")
    assert page.status == 200
    assert page.content_type == "text/html"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    html = await page.text()
    assert '<script src="console.js"' in html
    assert "<script>" not in html and " style=" not in html  # nothing inline: the CSP allows none

    for asset, media_type in (("console.js", "text/javascript"), ("console.css", "text/css")):
        response = await client.get(f"/admin/{asset}")
        assert response.status == 200
        assert response.content_type == media_type
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]


async def test_only_the_console_files_are_served(make_client: Any) -> None:
    client = await make_client()
    for path in (
        "/admin/index.html",
        "/admin/console.py",
        "/admin/../console.py",
        "/admin/%2e%2e/console.py",
        "/admin/..%2fconsole.py",
        "/admin/console/console.js",
        "/admin/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/admin//etc/passwd",
        "/admin/console.js/",
    ):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 404, (path, response.status)


# ------------------------------------------------------------------------------------------------------------
# In the browser.


async def test_blacklist_restriction_added_in_the_console_is_enforced_and_removed(
    console: Console, make_user: Any
) -> None:
    admin = await make_user(role="superadmin")
    await console.sign_in(admin)
    await console.signed_in(admin)
    # The list of the default policies: its first page, and how many there are.
    await console.expect("#permissions-pager .summary").to_contain_text(
        f"of {len(await console.sql(permissions))}"
    )
    await console.expect("#permissions-table tbody tr").to_have_count(100)
    assert await decision_from(console.client, BLACKLISTED) == (200, None)

    # An invalid value: the API's error is shown, nothing is stored.
    await console.page.select_option("#restriction-category", "blacklist")
    await console.page.select_option("#restriction-scope", "ip")
    await console.page.fill("#restriction-value", "203.0.113.999")
    await console.page.click("#restriction-save")
    await console.error_shown("422: value.invalid")
    assert await console.sql(restrictions) == []

    # The blacklist entry: shown in the list, stored, and enforced by the decision endpoint.
    await console.page.fill("#restriction-value", BLACKLISTED)
    await console.page.click("#restriction-save")
    row = await console.row("restrictions", "value", BLACKLISTED)
    await console.expect("#error").to_be_hidden()
    [stored] = await console.sql(restrictions, value=BLACKLISTED)
    assert (stored["category"], stored["scope"], stored["state"]) == ("blacklist", "ip", "enabled")
    await playwright_api.expect(row.locator("td.code")).to_have_text(str(stored["code"]))

    async def denied_with(code: int) -> bool:
        return await decision_from(console.client, BLACKLISTED) == (
            code,
            {"errors": ["authz.restrict.blacklist"]},
        )

    await within_one_second(lambda: denied_with(stored["code"]))
    assert await decision_from(console.client, "203.0.113.8") == (200, None)

    # Edited: a new code, applied at once.
    await row.locator("button.edit").click()
    await console.expect("#restriction-value").to_have_value(BLACKLISTED)
    await console.page.fill("#restriction-code", "403")
    await console.page.click("#restriction-save")
    await playwright_api.expect(row.locator("td.code")).to_have_text("403")
    [edited] = await console.sql(restrictions, value=BLACKLISTED)
    assert (edited["id"], edited["code"]) == (stored["id"], 403)
    await within_one_second(lambda: denied_with(403))

    # Removed: gone from the list and the table, and the IP passes again.
    await row.locator("button.delete").click()
    await playwright_api.expect(row).to_have_count(0)
    await console.expect("#status").to_contain_text(f"Restriction {stored['id']} deleted")
    assert await console.sql(restrictions) == []

    async def allowed() -> bool:
        return await decision_from(console.client, BLACKLISTED) == (200, None)

    await within_one_second(allowed)


async def test_permission_created_edited_and_deleted_in_the_console(console: Console, make_user: Any) -> None:
    admin = await make_user(role="superadmin")
    await console.sign_in(admin)
    await console.signed_in(admin)

    await console.page.fill("#permission-role", "member")
    await console.page.select_option("#permission-verb", "GET")
    await console.page.fill("#permission-path", "api/v2/console-e2e")
    await console.page.select_option("#permission-action", "ACCEPT")
    await console.page.fill("#permission-topic", "console")
    await console.page.click("#permission-save")
    row = await console.row("permissions", "path", "api/v2/console-e2e")  # the list moved to its last page
    [created] = await console.sql(permissions, path="api/v2/console-e2e")
    assert (created["role"], created["verb"], created["action"], created["topic"]) == (
        "member",
        "GET",
        "ACCEPT",
        "console",
    )
    await playwright_api.expect(row).to_have_attribute("data-id", str(created["id"]))

    await row.locator("button.edit").click()
    await console.expect("#permission-path").to_have_value("api/v2/console-e2e")
    await console.page.fill("#permission-path", "api/v2/console-e2e-edited")
    await console.page.select_option("#permission-action", "DROP")
    await console.page.click("#permission-save")
    row = await console.row("permissions", "path", "api/v2/console-e2e-edited")
    await playwright_api.expect(row.locator("td.action")).to_have_text("DROP")
    [edited] = await console.sql(permissions, id=created["id"])
    assert (edited["path"], edited["action"], edited["role"]) == (
        "api/v2/console-e2e-edited",
        "DROP",
        "member",
    )

    # An unknown role is refused by the API (same validation as on create) and the refusal is shown.
    await row.locator("button.edit").click()
    await console.page.fill("#permission-role", "no-such-role")
    await console.page.click("#permission-save")
    await console.error_shown("422: admin.permission.role_doesnt_exist")
    [unchanged] = await console.sql(permissions, id=created["id"])
    assert unchanged["role"] == "member"
    await console.page.click("#permission-cancel")

    await row.locator("button.delete").click()
    await playwright_api.expect(row).to_have_count(0)
    assert await console.sql(permissions, id=created["id"]) == []


async def test_the_console_cannot_delete_the_superadmins_last_way_into_the_admin_api(
    console: Console, make_user: Any
) -> None:
    admin = await make_user(role="superadmin")
    await console.sign_in(admin)
    await console.signed_in(admin)
    [everything] = await console.sql(permissions, role="superadmin", path="api/v2", action="ACCEPT")
    row = console.page.locator(f'#permissions-table tbody tr[data-id="{everything["id"]}"]')
    await playwright_api.expect(row).to_have_count(1)

    await row.locator("button.delete").click()  # one click (the confirmation is accepted)
    await console.error_shown("422: admin.permission.last_superadmin_access")
    await playwright_api.expect(row).to_have_count(1)
    assert await console.sql(permissions, id=everything["id"]) == [everything]


async def test_user_role_and_state_changed_in_the_console_after_a_2fa_sign_in(
    console: Console, make_user: Any, clock: Any
) -> None:
    admin = await make_user(role="superadmin", otp=True)
    target = await make_user(role="member")

    # 2FA: the form asks for the code when the API says it is missing, and shows a wrong one's error.
    await console.sign_in(admin)
    await console.error_shown("identity.session.missing_otp")
    await console.expect("#sign-in-otp").to_be_visible()
    await console.page.fill("#sign-in-otp", wrong_totp(admin.otp_secret, clock.now))
    await console.page.click("#sign-in-submit")
    await console.error_shown("identity.session.invalid_otp")
    await console.page.fill("#sign-in-otp", code_at(admin.otp_secret, clock.now))
    await console.page.click("#sign-in-submit")
    await console.signed_in(admin)

    # Unknown user: the API's 404 is shown.
    await console.page.fill("#user-query", "ID0000000000")
    await console.page.click("#user-lookup")
    await console.error_shown("404: admin.user.doesnt_exist")
    await console.expect("#user-details").to_be_hidden()

    await console.page.fill("#user-query", target.user.email)
    await console.page.click("#user-lookup")
    await console.expect("#user-uid").to_have_text(target.user.uid)
    await console.expect("#user-role").to_have_text("member")
    await console.expect("#user-state").to_have_text("active")

    await console.page.fill("#user-new-role", "support")
    await console.page.click("#user-role-save")
    await console.expect("#user-role").to_have_text("support")
    [row] = await console.sql(users, uid=target.user.uid)
    assert row["role"] == "support"

    await console.page.fill("#user-new-state", "banned")
    await console.page.click("#user-state-save")
    await console.expect("#user-state").to_have_text("banned")
    [row] = await console.sql(users, uid=target.user.uid)
    assert (row["state"], row["role"]) == ("banned", "support")

    # Looked up by UID as well.
    await console.page.fill("#user-query", target.user.uid)
    await console.page.click("#user-lookup")
    await console.expect("#user-email").to_have_text(target.user.email)
    await console.expect("#user-state").to_have_text("banned")


async def test_a_refusal_of_the_decision_endpoint_is_shown(console: Console, make_user: Any) -> None:
    member = await make_user(role="member")
    await console.sign_in(member)
    await console.expect("#account-email").to_have_text(member.user.email)
    await console.error_shown("401: authz.invalid_permission")
    await console.expect("#permissions-table tbody tr").to_have_count(0)
    await console.expect("#console").to_be_visible()  # signed in all the same: the role is what is refused


# What Envoy passes to the decision endpoint (envoy/envoy.yaml ``allowed_headers``), and what it never forwards.
GATEWAY_DECISION_HEADERS = ("Cookie", "User-Agent", "X-CSRF-Token", "X-Forwarded-For")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


async def start_gateway(aiohttp_server: Any, service: Any) -> Any:
    """A stand-in for the Envoy of envoy/envoy.yaml in front of ``service``: every request but the console's
    static files is first put to the decision endpoint; only a 200 lets it through, with the Authorization
    header the decision endpoint returned (a client's own is dropped)."""
    upstream = str(service.make_url("/")).rstrip("/")
    http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)

    async def forward(request: web.Request) -> web.Response:
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"authorization"}
        }
        if not request.path.startswith("/admin"):
            asked = {
                name: request.headers[name] for name in GATEWAY_DECISION_HEADERS if name in request.headers
            }
            async with http.request(
                request.method, f"{upstream}/api/v2/auth{request.path_qs}", headers=asked
            ) as decision:
                if decision.status != 200:
                    return web.Response(
                        status=decision.status, body=await decision.read(), content_type="application/json"
                    )
                if "Authorization" in decision.headers:
                    headers["Authorization"] = decision.headers["Authorization"]
        async with http.request(
            request.method,
            upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            response = web.Response(status=answer.status, body=await answer.read())
            for name, value in answer.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers.add(name, value)
            return response

    gateway = web.Application()
    gateway.router.add_route("*", "/{path:.*}", forward)

    async def close(_app: web.Application) -> None:
        await http.close()

    gateway.on_cleanup.append(close)
    return await aiohttp_server(gateway)


async def test_behind_a_gateway_the_page_never_asks_the_decision_endpoint(
    console: Console, make_user: Any, aiohttp_server: Any
) -> None:
    gateway = await start_gateway(aiohttp_server, console.client)
    asked: list[str] = []

    def on_request(request: Any) -> None:
        if "/api/v2/auth/" in request.url:
            asked.append(request.url)

    console.page.on("request", on_request)
    admin = await make_user(role="superadmin")
    await console.page.goto(str(gateway.make_url("/admin/")))
    await console.page.fill("#sign-in-email", admin.user.email)
    await console.page.fill("#sign-in-password", admin.password)
    await console.page.click("#sign-in-submit")
    await console.signed_in(admin)

    await console.page.fill("#restriction-value", BLACKLISTED)
    await console.page.click("#restriction-save")
    await console.row("restrictions", "value", BLACKLISTED)
    assert [row["value"] for row in await console.sql(restrictions)] == [BLACKLISTED]
    assert await console.page.evaluate("sessionStorage.getItem('authz.console.mode')") == "gateway"
    assert asked == []


async def test_sign_out_ends_the_session(console: Console, make_user: Any) -> None:
    admin = await make_user(role="superadmin")
    await console.sign_in(admin)
    await console.signed_in(admin)
    [cookie] = [c for c in await console.page.context.cookies() if c["name"] == "_barong_session"]
    user_agent = await console.page.evaluate("navigator.userAgent")
    headers = {"Cookie": f"_barong_session={cookie['value']}", "User-Agent": user_agent}
    admin_path = "/api/v2/auth/api/v2/barong/admin/permissions"
    assert (await console.client.get(admin_path, headers=headers)).status == 200

    await console.page.click("#sign-out")
    await console.expect("#sign-in-section").to_be_visible()
    await console.expect("#console").to_be_hidden()
    denied = await console.client.get(admin_path, headers=headers)
    assert denied.status == 401
    assert (await denied.json())["errors"] == ["authz.invalid_session"]

    # A reload shows the sign-in form, not a console without a session.
    await console.page.reload()
    await console.expect("#sign-in-section").to_be_visible()
