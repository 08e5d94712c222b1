"""The token API's OpenAPI document (``swagger_doc/financelime``): faithful to seeds 000 and 001, to the app's
routes, generated, served, and true to the real answers.

The seeds' endpoints are copied into ``seed_endpoints.json`` (CI clones only this repository); when the seeds
are present the copy is checked against them.  Body fields are listed as parameters located in ``body``
(``device.height`` for a field of a nested model).  The document's structure is checked with the others'
by ``tests/resource/test_swagger.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from identity.http.resource import swagger
from identity.openapi import document_path
from identity.openapi.build import build, render
from tests.identity.financelime.helpers import (
    DEVICE,
    SEED_000,
    SEED_001,
    Api,
    headers,
    link_in,
)
from tests.resource.test_swagger import app_routes, deref, operations, violations

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[3]
SEEDS = ROOT.parent / "shared" / "seeds"
SEED_FILES = {"000": SEEDS / "000_17b323eb2d089faa.txt", "001": SEEDS / "001_535863bc59385b2c.txt"}
FIXTURE = Path(__file__).with_name("seed_endpoints.json")
#: Parameters we take beyond the seeds' (each documented): (method, path) → {(name, location)}.
EXTRA_PARAMETERS = {
    ("post", "/v1/oauth"): {("otpCode", "body")},  # the account's 2FA code
    ("post", "/v1/oauth/create"): {("otpCode", "body")},
}
TYPES = {"string": "string", "integer": "integer", "object": "object"}
PREFIXES = ("/v1/", "/u/", "/p/")


def load() -> dict[str, Any]:
    return json.loads(swagger.DOCUMENTS["financelime"])


# --- the seeds -------------------------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_seed(text: str) -> list[dict[str, Any]]:
    """The endpoints of a Financelime seed (go-swagger markdown): a fenced ``METHOD /path`` per operation, its
    ``#### Parameters`` table (a ``body`` row names a model), and the ``## Models`` property tables."""
    paths_part, _, models_part = text.partition("\n## Models")
    models: dict[str, list[list[str]]] = {}
    model = None
    for line in models_part.splitlines():
        if match := re.match(r'^### <span id="model-[^"]+"></span> model\.(\w+)', line):
            model = "Model" + match.group(1)
            models[model] = []
        elif model and line.startswith("| ") and not line.startswith("| Name"):
            name, kind, _go, required = _cells(line)[:4]
            models[model].append([name, kind, required])

    def fields(model: str, prefix: str = "") -> list[list[Any]]:
        found: list[list[Any]] = []
        for name, kind, required in models[model]:
            ref = re.match(r"^\[(\w+)\]", kind)
            found.append([prefix + name, "body", required == "✓", "object" if ref else kind])
            if ref:
                found += fields(ref.group(1), f"{prefix}{name}.")
        return found

    endpoints: list[dict[str, Any]] = []
    section = None
    for line in paths_part.splitlines():
        if match := re.match(r"^(GET|POST|PUT|PATCH|DELETE) (/\S+)$", line):
            endpoints.append({"method": match.group(1).lower(), "path": match.group(2), "parameters": []})
            section = None
        elif line.startswith("#"):
            section = line.lstrip("#").strip()
        elif section == "Parameters" and line.startswith("| ") and not line.startswith("| Name"):
            name, source, kind, _go, _sep, required = _cells(line)[:6]
            source = source.strip("`")
            if source == "body":
                endpoints[-1]["parameters"] += fields(re.match(r"^\[(\w+)\]", kind).group(1))  # type: ignore[union-attr]
            else:
                endpoints[-1]["parameters"].append([name, source, required == "✓", kind])
    return endpoints


def merged(seeds: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every endpoint of either seed, with the seeds that list it (they agree where both do)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for seed, endpoints in sorted(seeds.items()):
        for endpoint in endpoints:
            key = (endpoint["method"], endpoint["path"])
            if key in found:
                assert found[key]["parameters"] == endpoint["parameters"], key
                found[key]["seeds"].append(seed)
            else:
                found[key] = {**endpoint, "seeds": [seed]}
    return list(found.values())


def seed_endpoints() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))["endpoints"]  # type: ignore[no-any-return]


def test_the_fixture_is_the_seeds_endpoint_list() -> None:
    if not all(path.exists() for path in SEED_FILES.values()):
        pytest.skip(
            f"the seeds are not checked out next to the repository ({SEEDS}); the fixture copy is used"
        )
    seeds = {seed: parse_seed(path.read_text(encoding="utf-8")) for seed, path in SEED_FILES.items()}
    assert (len(seeds["000"]), len(seeds["001"])) == (9, 8)  # the parser finds every endpoint
    assert merged(seeds) == seed_endpoints()


def documented_parameters(document: dict[str, Any], operation: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """(name, seed location) → (required, type) of the operation's parameters and (nested) body fields."""
    found: dict[tuple[str, str], Any] = {
        (p["name"], p["in"]): (p.get("required", False), deref(document, p["schema"])["type"])
        for p in operation.get("parameters", [])
    }

    def walk(schema: dict[str, Any], prefix: str) -> None:
        schema = deref(document, schema)
        for field, field_schema in schema.get("properties", {}).items():
            field_schema = deref(document, field_schema)
            found[(prefix + field, "body")] = (field in schema.get("required", []), field_schema["type"])
            if field_schema["type"] == "object":
                walk(field_schema, f"{prefix}{field}.")

    body = operation.get("requestBody")
    if body:
        walk(body["content"]["application/json"]["schema"], "")
    return found


@pytest.mark.parametrize("endpoint", seed_endpoints(), ids=lambda e: f"{e['method']} {e['path']}")
def test_every_seed_endpoint_is_documented_with_its_parameters(endpoint: dict[str, Any]) -> None:
    document = load()
    method, path = endpoint["method"], endpoint["path"]
    operation = document["paths"][path][method]
    documented = documented_parameters(document, operation)
    expected = {
        (name, location): (required, TYPES[kind]) for name, location, required, kind in endpoint["parameters"]
    }
    assert set(documented) == set(expected) | EXTRA_PARAMETERS.get((method, path), set())
    for key, value in expected.items():
        assert documented[key] == value, key


def test_every_documented_endpoint_is_in_a_seed() -> None:
    listed = {(e["method"], e["path"]) for e in seed_endpoints()}
    documented = {(method, path) for path, method, _ in operations(load())}
    assert documented == listed
    for (method, path), extra in EXTRA_PARAMETERS.items():
        names = {
            (p[0], p[1])
            for e in seed_endpoints()
            if (e["method"], e["path"]) == (method, path)
            for p in e["parameters"]
        }
        assert not extra & names, (method, path)


def test_the_helpers_path_sets_are_the_seeds() -> None:
    listed = {(e["method"], e["path"]) for e in seed_endpoints()}
    for paths in (SEED_000, SEED_001):
        assert {(method.lower(), path) for method, path in paths.values()} <= listed


# --- the document and the app ----------------------------------------------------------------------------


def _template(path: str) -> str:
    return re.sub(r"\{\w+\}", "{}", path)


@SQLITE_ONLY
def test_every_token_api_route_is_documented_and_vice_versa(settings: Any) -> None:
    """Trailing-slash twins are left out of the document (its description says so): each is checked here."""
    served = {(method, path) for method, path in app_routes(settings) if path.startswith(PREFIXES)}
    bare = {(method, path) for method, path in served if not path.endswith("/")}
    assert {(method, path + "/") for method, path in bare} == served - bare, (
        "every route answers with a slash"
    )
    documented = {(method, _template(path)) for path, method, _ in operations(load())}
    bare = {(method, _template(path)) for method, path in bare}
    assert sorted(bare - documented) == [], "served but not documented"
    assert sorted(documented - bare) == [], "documented but not served"


def test_bearer_token_guards_the_session_endpoints_only() -> None:
    document = load()
    assert document["components"]["securitySchemes"]["AccessToken"]["scheme"] == "bearer"
    for path, method, operation in operations(document):
        guarded = path.startswith(("/v1/session", "/v1/sessions"))
        assert ("security" in operation) == guarded, path
        may_need_otp = method == "post" and path.startswith("/v1/oauth")
        assert ("401" in operation["responses"]) == (guarded or may_need_otp), path
        if guarded:
            assert operation["security"] == [{"AccessToken": []}], path
        names = {(p["name"], p["in"]) for p in operation.get("parameters", [])}
        assert ("request-id", "header") in names or ("rid", "query") in names, path


def test_the_checked_in_document_is_the_generators_output() -> None:
    assert document_path("financelime").read_text(encoding="utf-8") == render(build("financelime")), (
        "financelime.json is out of date: run python -m identity.openapi.build"
    )


@SQLITE_ONLY
@pytest.mark.parametrize("prefix", ["/api/v2/barong/resource", "/api/v2/resource"])
async def test_the_document_is_served_without_a_token(api_client: Any, prefix: str) -> None:
    response = await api_client.get(f"{prefix}/swagger_doc/financelime")
    assert response.status == 200
    assert await response.read() == document_path("financelime").read_bytes()


# --- real answers against the documented schemas --------------------------------------------------------


def _operation_of(method: str, path: str) -> tuple[str, dict[str, Any]]:
    document = load()
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "/?$"
        if method in item and re.match(pattern, path.split("?")[0]):
            return template, item[method]
    raise AssertionError(f"{method} {path} is not documented")


async def conforms(response: Any) -> Any:
    """``response`` is one the document describes for its request: status, headers, media and body."""
    method, path = response.method.lower(), response.url.path_qs
    template, operation = _operation_of(method, path)
    status = str(response.status)
    assert status in operation["responses"], (method, path, response.status, await response.text())
    described = operation["responses"][status]
    for header, spec in described.get("headers", {}).items():
        if spec.get("required"):
            assert header in response.headers, (template, status, header)
    if "content" not in described:
        assert await response.read() == b"", (method, path)
        return None
    assert response.content_type in described["content"], (template, status, response.content_type)
    if response.content_type == "text/html":
        return await response.text()
    body = await response.json()
    schema = described["content"][response.content_type]["schema"]
    assert violations(load(), schema, body) == [], (method, path, body)
    return body


def form(email: str, invite: str, language: str = "en") -> dict[str, str]:
    return {"email": email, "inviteCode": invite, "language": language}


@SQLITE_ONLY
async def test_token_api_answers_match_the_document(
    api_client: Any, inbox: Any, invite: str, make_user: Any
) -> None:
    old, new = Api(api_client, SEED_000), Api(api_client, SEED_001)
    seen: set[int] = set()

    async def check(response: Any) -> Any:
        seen.add(response.status)
        return await conforms(response)

    # sign-up and its page
    assert (await check(await old.call("sign_up", form("doc@example.com", invite)))) is None
    await check(await new.call("sign_up", form("doc@example.com", invite)))  # 409
    await check(await old.call("sign_up", form("other@example.com", "NoSuchCode")))  # 404
    await check(await new.call("sign_up", form("not-an-address", invite)))  # 400
    link = link_in((await inbox.wait_for("doc@example.com", "signup_confirmation"))[0], "u")
    assert "E-mail confirmed" in await check(await api_client.get(link))
    await check(await api_client.get(link))  # 404, HTML
    await check(await api_client.get(link, headers={"Accept": "application/json"}))  # 404, JSON
    await check(await api_client.get(link.split("?")[0]))  # 400: no request id
    # password reset and its page
    account = await make_user()
    await check(await new.call("reset", {"email": account.user.email}))
    await check(await old.call("reset", {"email": "nobody@example.com"}))  # 404
    reset = link_in((await inbox.wait_for(account.user.email, "reset_link"))[0], "p")
    assert (await check(await api_client.get(reset, headers={"Accept": "application/json"})))["code"] == 200
    # tokens
    account = await make_user()
    body = {
        "clientID": "PWA_v0.0.1",
        "device": DEVICE,
        "email": account.user.email,
        "password": account.password,
    }
    grant = await check(await old.call("login", body))
    await check(await new.call("login", {**body, "password": "wrong-password"}))  # 404
    await check(await old.call("login", {**body, "device": "phone"}))  # 400
    with_otp = await make_user(otp=True)
    await check(
        await old.call("login", {**body, "email": with_otp.user.email, "password": with_otp.password})
    )
    banned = await make_user(state="banned")
    await check(await new.call("login", {**body, "email": banned.user.email, "password": banned.password}))
    renewed = await check(await new.call("refresh", {"refreshToken": grant["refreshToken"]}))
    await check(await old.call("refresh", {"refreshToken": "short"}))  # 400 BAD_REFRESH_TOKEN
    await check(await old.call("refresh", {"refreshToken": grant["refreshToken"]}))  # 404: used twice
    grant = await check(await old.call("login", body))
    assert len(await check(await new.call("sessions", token=grant["accessToken"]))) == 1
    await check(await old.call("sessions"))  # 401
    await check(await old.call("revoke", {"sessionID": renewed["sessionID"]}, token=grant["accessToken"]))
    await check(await new.call("revoke", {"sessionID": "xyz"}, token=grant["accessToken"]))  # 400
    await check(await old.call("revoke", {"sessionID": ""}, token="not-a-token"))  # 401
    await check(await old.call("version"))
    await check(await api_client.get("/v1/version/"))  # 400: no request id
    await check(await api_client.get("/v1/version", headers={**headers(), "request-id": "a b"}))  # 400
    assert seen == {200, 204, 400, 401, 403, 404, 409}
