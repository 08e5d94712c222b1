"""Schemathesis against the live service, for every OpenAPI document it serves.

Each document is fetched from the running app (``/api/v2/barong/resource/swagger_doc/{name}``) and every
operation in it is sent generated requests over real TCP, schema-conforming ones and schema-violating
ones: no answer may be a 5xx, every answer must be documented (status, media type, headers, body), and a
request that violates the document must be refused with a 4xx.

How it runs: the app is aiohttp's test server on the test's event loop; Schemathesis (synchronous, over
``requests``) runs in a worker thread and reaches back into the loop only to make credentials.  The caller
is an active superadmin: the resource and admin documents get the upstream JWT the decision endpoint mints
for it, the identity API and the decision endpoint its session cookie (with its CSRF token and user agent
where a case does not generate its own), the token API an access token of ``POST /v1/oauth``.  Operations
that would end the caller's own credentials (logout, deleting the account, changing its password, ending
its token session) get fresh ones for every case.  A few hand-written cases per document reach the paths
that random data cannot (a decision that allows).

Bounded: a few examples per operation and generation mode, derandomized (the same cases every run),
nothing shrunk, a fresh app, database and Redis namespace per document.  One backend is enough: the
documents describe HTTP, and the storage behind it is tested on both backends elsewhere, so these runs
use SQLite only.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from authz.app import SERVICES
from identity.invite_codes import SqlInviteCodeRepository
from identity.openapi import DOCUMENTS
from identity.openapi.build import METHODS
from tests.identity.financelime.helpers import DEVICE
from tests.identity.financelime.helpers import headers as token_api_headers
from tests.identity.helpers import CLIENT_IP, UA, browser, cheap_argon2, login
from tests.resource.helpers import jwt_for

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SWAGGER = "/api/v2/barong/resource/swagger_doc"
IDENTITY = "/api/v2/barong/identity"
RESOURCE = "/api/v2/barong/resource"
ADMIN = "/api/v2/barong/admin"
#: Examples per operation and generation mode: enough to reach each handler's validation, few enough for
#: the six documents (~115 operations) to take well under two minutes on a small machine.  A deeper run:
#: ``AUTHZ_TEST_SCHEMATHESIS_EXAMPLES=100 pytest tests/openapi``.
MAX_EXAMPLES = int(os.environ.get("AUTHZ_TEST_SCHEMATHESIS_EXAMPLES", "6"))
#: What every answer must satisfy.  Left out on purpose: ``positive_data_acceptance`` (a document cannot
#: say everything the service checks: a password's strength, an address's syntax, a TOTP code, whether a
#: uid exists... so a schema-valid request is often rightly a 400/422); ``max_response_time`` (a slow,
#: shared CI machine is not the service being slow).
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
)
SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
    verbosity=hypothesis.Verbosity.quiet,
)


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


@dataclass
class Credentials:
    """What a case carries to be authenticated."""

    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    #: Headers sent only when the case did not generate its own (a cookie session's user agent, CSRF token).
    defaults: dict[str, str] = field(default_factory=dict)
    #: The caller's ``email``, ``password`` and ``uid`` (and for the token API its ``refresh_token`` and an
    #: ``invite_code``), for the hand-written cases.
    account: dict[str, str] = field(default_factory=dict)


Operation = tuple[str, str]  # (method, path as documented)


@dataclass
class Document:
    """How one document is exercised."""

    #: ``await credentials(api, make_user)``: fresh credentials of an active superadmin.
    credentials: Callable[[Any, Any], Any]
    #: Operations that would end the caller's own credentials, and what they would do: each case gets
    #: fresh credentials.
    self_ending: dict[Operation, str] = field(default_factory=dict)
    #: Checks that cannot hold for an operation, and why.
    excused: dict[Operation, tuple[tuple[Callable[..., Any], ...], str]] = field(default_factory=dict)
    #: Hand-written cases, run before the generated ones: the status expected and ``APIOperation.Case``'s
    #: keyword arguments, made from the caller's account.  They reach what random data cannot (a decision
    #: that allows, a login, a created record) and prove the credentials work.
    explicit: dict[Operation, list[Callable[[dict[str, str]], dict[str, Any]]]] = field(default_factory=dict)


def account_of(account: Any) -> dict[str, str]:
    return {"email": account.user.email, "password": account.password, "uid": account.user.uid}


async def bearer_credentials(api: Any, make_user: Any) -> Credentials:
    """Resource and admin APIs: the upstream JWT of an active superadmin, as the gateway forwards it."""
    account = await make_user(role="superadmin")
    return Credentials(
        headers=browser(Authorization=await jwt_for(api, account)), account=account_of(account)
    )


async def cookie_credentials(api: Any, make_user: Any) -> Credentials:
    """Identity API and decision endpoint: a superadmin's session cookie, its CSRF token and user agent."""
    account = await make_user(role="superadmin")
    cookie, body = await login(api, account)
    return Credentials(
        cookies={"_barong_session": cookie},
        defaults={"User-Agent": UA, "X-CSRF-Token": body["csrf_token"], "X-Forwarded-For": CLIENT_IP},
        account=account_of(account),
    )


async def token_credentials(api: Any, make_user: Any) -> Credentials:
    """Token API: an access token of ``POST /v1/oauth``."""
    account = await make_user(role="superadmin")
    body = {
        "clientID": "schemathesis",
        "device": DEVICE,
        "email": account.user.email,
        "password": account.password,
    }
    response = await api.post("/v1/oauth", json=body, headers=token_api_headers())
    assert response.status == 200, await response.text()
    tokens = await response.json()
    invite = await SqlInviteCodeRepository(api.server.app[SERVICES].engine).create(
        max_uses=5, created_by="test"
    )
    return Credentials(
        headers={"Authorization": f"Bearer {tokens['accessToken']}"},
        account={**account_of(account), "refresh_token": tokens["refreshToken"], "invite_code": invite.code},
    )


ALLOWED = "api/v2/peatio/account/balances"  # every role may GET it (policies/permissions.yml)
MISMATCH = "a user agent other than the session's ends the session"
JSON = "application/json"
STRONG = "Kq8-vanilla-Orbit-77!"  # strong enough for the password policy (zxcvbn)
REVOKE_OWN = "an empty sessionID ends the caller's own token session"
DOCUMENTS_RUN: dict[str, Document] = {
    "identity": Document(
        cookie_credentials,
        self_ending={("DELETE", f"{IDENTITY}/sessions"): "logout ends the session"},
        explicit={
            ("POST", f"{IDENTITY}/sessions"): [
                lambda me: {
                    "status": 200,
                    "body": {"email": me["email"], "password": me["password"]},
                    "media_type": JSON,
                }
            ],
            ("POST", f"{IDENTITY}/users"): [
                lambda _: {
                    "status": 201,
                    "body": {"email": "new@example.com", "password": STRONG},
                    "media_type": JSON,
                }
            ],
        },
    ),
    "public": Document(cookie_credentials),
    "auth": Document(
        cookie_credentials,
        # Barong's policy: a cookie presented with another user agent (or from another address) than the
        # session's ends the session (authz.client_session_mismatch), and the cases generate user agents.
        self_ending={
            **{(method.upper(), "/api/v2/auth/{path}"): MISMATCH for method in METHODS},
            ("GET", "/_authz/nginx"): MISMATCH,
        },
        excused={
            ("GET", "/_authz/nginx/denied"): (
                (not_a_server_error,),
                (
                    "it echoes a denial, whatever its status, and fails closed with 503 authz.unavailable "
                    "when there is none to echo (what nginx asks when the sidecar did not answer)"
                ),
            )
        },
        explicit={
            ("GET", "/api/v2/auth/{path}"): [lambda _: {"status": 200, "path_parameters": {"path": ALLOWED}}],
            ("GET", "/_authz/nginx"): [
                lambda _: {
                    "status": 200,
                    "headers": {"X-Original-Method": "GET", "X-Original-URI": f"/{ALLOWED}?currency=btc"},
                }
            ],
            ("GET", "/_authz/nginx/denied"): [
                lambda _: {
                    "status": 471,
                    "headers": {"X-Authz-Status": "471", "X-Authz-Error": "authz.restrict.maintenance"},
                }
            ],
        },
    ),
    "resource": Document(
        bearer_credentials,
        self_ending={
            ("DELETE", f"{RESOURCE}/users/me"): "deletes the account",
            ("PUT", f"{RESOURCE}/users/password"): "changes the password, ending the other sessions",
        },
        explicit={
            ("POST", f"{RESOURCE}/labels"): [
                lambda _: {"status": 201, "body": {"key": "tier", "value": "gold"}, "media_type": JSON}
            ],
            ("POST", f"{RESOURCE}/data_storage"): [
                lambda _: {"status": 201, "body": {"title": "tax", "data": {"id": 7}}, "media_type": JSON}
            ],
            ("PUT", f"{RESOURCE}/users/me"): [
                lambda _: {"status": 200, "body": {"data": '{"nick": "ada"}'}, "media_type": JSON}
            ],
        },
    ),
    "admin": Document(
        bearer_credentials,
        explicit={
            ("GET", f"{ADMIN}/users/{{uid}}"): [
                lambda me: {"status": 200, "path_parameters": {"uid": me["uid"]}}
            ],
            ("POST", f"{ADMIN}/permissions"): [
                lambda _: {
                    "status": 201,
                    "body": {"role": "superadmin", "verb": "get", "path": "api/v2/x", "action": "accept"},
                    "media_type": JSON,
                }
            ],
            ("POST", f"{ADMIN}/restrictions"): [
                lambda _: {
                    "status": 201,
                    "body": {"scope": "ip", "value": "10.9.8.7", "category": "blacklist"},
                    "media_type": JSON,
                }
            ],
        },
    ),
    "financelime": Document(
        token_credentials,
        self_ending={("DELETE", "/v1/session"): REVOKE_OWN, ("DELETE", "/v1/session/remove"): REVOKE_OWN},
        explicit={
            ("POST", "/v1/user"): [
                lambda me: {
                    "status": 204,
                    "headers": {"request-id": "schemathesis"},
                    "body": {"email": "new@example.com", "inviteCode": me["invite_code"], "language": "en"},
                    "media_type": JSON,
                }
            ],
            ("PUT", "/v1/user"): [  # a reset link mailed; the password stays until the link is followed
                lambda me: {
                    "status": 204,
                    "headers": {"request-id": "schemathesis"},
                    "body": {"email": me["email"]},
                    "media_type": JSON,
                }
            ],
            ("PUT", "/v1/oauth"): [  # the shared access token outlives the rotation: the session stays
                lambda me: {
                    "status": 200,
                    "headers": {"request-id": "schemathesis"},
                    "body": {"refreshToken": me["refresh_token"]},
                    "media_type": JSON,
                }
            ],
            ("POST", "/v1/oauth"): [
                lambda me: {
                    "status": 200,
                    "headers": {"request-id": "schemathesis"},
                    "body": {
                        "clientID": "PWA_v0.0.1",
                        "device": DEVICE,
                        "email": me["email"],
                        "password": me["password"],
                    },
                    "media_type": JSON,
                }
            ],
        },
    ),
}


class Run:
    """One document's Schemathesis run against the service at ``base_url`` (runs in a worker thread)."""

    def __init__(
        self, name: str, base_url: str, shared: Credentials, fresh: Callable[[], Credentials]
    ) -> None:
        self.name = name
        self.document = DOCUMENTS_RUN[name]
        self.base_url = base_url
        self.shared = shared
        self.fresh = fresh
        self.session = requests.Session()
        self.problems: list[str] = []
        #: Statuses answered, by operation: shows how far past authentication and validation the run got.
        self.statuses: dict[str, Counter[int]] = {}

    def __call__(self) -> Run:
        schema = schemathesis.openapi.from_url(f"{self.base_url}{SWAGGER}/{self.name}")
        try:
            for result in schema.get_all_operations():
                operation = result.ok()
                key = (operation.method.upper(), operation.path)
                for make_case in self.document.explicit.get(key, []):
                    arguments = make_case(self.shared.account)
                    expected = arguments.pop("status")
                    self._guarded(
                        operation, "explicit", self._explicit, operation.Case(**arguments), expected
                    )
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    self._guarded(operation, mode.value, self._generated(operation, mode))
        finally:
            self.session.close()
        return self

    def _generated(self, operation: Any, mode: GenerationMode) -> Callable[[], None]:
        @SETTINGS
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def test(case: Any) -> None:
            self._send(case)

        def run() -> None:
            try:
                test()
            except hypothesis.errors.Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # no parameters and no body: nothing can be made invalid

        return run

    def _guarded(self, operation: Any, what: str, run: Callable[..., None], *args: Any) -> None:
        try:
            run(*args)
        except (Exception, FailureGroup) as exc:  # noqa: BLE001 - every problem is collected, then reported
            self.problems.append(f"{self.name}: {operation.label} ({what}):\n{exc}")

    def _explicit(self, case: Any, expected: int) -> None:
        response = self._send(case)
        assert response.status_code == expected, (
            f"expected {expected}, got {response.status_code}: {response.text}"
        )

    def _send(self, case: Any) -> Any:
        key = (case.operation.method.upper(), case.operation.path)
        if case.operation.schema.is_security_param_negated(case):
            credentials = Credentials()  # the case is about missing or bad credentials: send it as generated
        elif key in self.document.self_ending:
            credentials = self.fresh()
        else:
            credentials = self.shared
        headers = dict(credentials.headers)
        for name, value in credentials.defaults.items():
            if name not in (case.headers or {}):
                headers[name] = value
        response = case.call(
            base_url=self.base_url, session=self.session, headers=headers, cookies=credentials.cookies
        )
        self.statuses.setdefault(case.operation.label, Counter())[response.status_code] += 1
        excused = self.document.excused.get(key, ((), ""))[0]
        case.validate_response(response, checks=checks_except(excused), headers=headers)
        return response


def checks_except(excused: Iterable[Callable[..., Any]]) -> list[Callable[..., Any]]:
    return [check for check in CHECKS if check not in set(excused)]


@SQLITE_ONLY
@pytest.mark.parametrize("name", DOCUMENTS)
async def test_every_answer_is_documented_and_no_input_is_a_server_error(
    name: str, make_client: Any, make_user: Any
) -> None:
    api = await make_client()
    make = DOCUMENTS_RUN[name].credentials
    loop = asyncio.get_running_loop()

    def fresh() -> Credentials:  # called from the worker thread: the app and the database live in this loop
        return asyncio.run_coroutine_threadsafe(make(api, make_user), loop).result(timeout=30)

    run = Run(name, str(api.make_url("")).rstrip("/"), await make(api, make_user), fresh)
    await asyncio.to_thread(run)
    for label, statuses in run.statuses.items():  # how far the cases got (shown with -s)
        print(label, dict(sorted(statuses.items())))
    assert not run.problems, f"{len(run.problems)} problem(s):\n\n" + "\n\n".join(run.problems)


def test_every_document_is_run() -> None:
    assert set(DOCUMENTS_RUN) == set(DOCUMENTS)
