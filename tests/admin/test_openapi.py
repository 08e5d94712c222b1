"""The admin API's OpenAPI document: faithful to seeds 2.4 and 2.0, to the app's routes, served, and true to
the real answers.

The seeds' admin endpoints are copied into ``seed_endpoints.json`` (CI clones only this repository); when the
seeds are present the copy is checked against them.  Where both seeds list an endpoint, seed 2.4's
parameters win.  The document's structure, generation and serving as one of the documents are checked by
``tests/resource/test_swagger.py`` too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from identity.http.resource import swagger
from identity.openapi import document_path
from identity.openapi.build import build
from tests.admin.conftest import ADMIN, ADMIN_ALIAS
from tests.admin.test_abilities import ROUTES, registered_admin_routes
from tests.identity.helpers import browser
from tests.resource.helpers import bearer, jwt_for
from tests.resource.test_swagger import SEED_TYPES, deref, documented_parameters, operations, violations

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT.parent / "shared" / "seeds"
SEED_24 = SEEDS / "002_5cd957559299d20d.txt"
SEED_20 = SEEDS / "004_6b62fa8aad6e49ea.txt"
FIXTURE = Path(__file__).with_name("seed_endpoints.json")
#: Parameters we take beyond the seeds' (each one documented): (method, path) → {(name, seed location)}.
EXTRA_PARAMETERS = {
    ("get", "/users"): {("ordering", "query"), ("order_by", "query")},  # Barong 2.6's ordering of users
    ("put", "/users"): {("email", "formData")},  # Barong 2.6: a superadmin changes e-mails
    ("get", "/restrictions"): {("from", "query"), ("to", "query")},  # barong-behavior.md §7.2
}
#: Endpoints no seed lists: ours and Barong 2.6's.
NOT_IN_THE_SEEDS = {("get", "/abilities"), ("post", "/profiles")}


def load() -> dict[str, Any]:
    return json.loads(swagger.DOCUMENTS["admin"])


# --- the seeds -------------------------------------------------------------------------------------------


def _parse(text: str, path_mark: str, method_mark: str, models: str, row: str) -> list[dict[str, Any]]:
    """The ``/admin`` endpoints of a seed's markdown: path headings, method headings, ``Parameters`` tables
    of ``name | located in | description | required | type`` rows, up to the models."""
    endpoints: list[dict[str, Any]] = []
    path, section = "", None
    for line in text.splitlines():
        if line.startswith(models):
            break
        if match := re.match(rf"^{path_mark} (/\S.*)$", line):
            path = re.sub(r"\{(\w+)\s*\}", r"{\1}", match.group(1).strip())
        elif match := re.match(rf"^{method_mark}(GET|POST|PUT|PATCH|DELETE)$", line):
            endpoints.append({"method": match.group(1).lower(), "path": path, "parameters": []})
            section = None
        elif line.startswith("#"):
            section = line.lstrip("#").strip().rstrip(":")
        elif section == "Parameters" and re.match(row, line) and not re.match(r"^\|? ?(Name |-)", line):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            endpoints[-1]["parameters"].append([cells[0], cells[1], cells[3] == "Yes", cells[4].lower()])
    return [
        {**endpoint, "path": "/api/v2/barong" + endpoint["path"]}
        for endpoint in endpoints
        if endpoint["path"].startswith("/admin/")
    ]


def parse_seed_24(text: str) -> list[dict[str, Any]]:
    """Seed 2.4: ``# /admin/levels``, ``#GET``, rows ``uid | formData | ... | Yes | string |``."""
    return _parse(text, "#", "#", "# Models", r"^[^#|].*\|")


def parse_seed_20(text: str) -> list[dict[str, Any]]:
    """Seed 2.0: ``### /admin/metrics``, ``#### GET``, rows ``| uid | formData | ... | Yes | string |``."""
    return _parse(text, "###", "#### ", "### Models", r"^\|")


def merged(newer: list[dict[str, Any]], older: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every endpoint of either seed, the newer seed's where both list it."""
    older_keys = {(e["method"], e["path"]) for e in older}
    newer_keys = {(e["method"], e["path"]) for e in newer}
    found = [
        {**e, "seeds": ["002", "004"] if (e["method"], e["path"]) in older_keys else ["002"]} for e in newer
    ]
    return found + [{**e, "seeds": ["004"]} for e in older if (e["method"], e["path"]) not in newer_keys]


def seed_endpoints() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))["endpoints"]  # type: ignore[no-any-return]


def test_the_fixture_is_the_seeds_admin_endpoint_list() -> None:
    if not (SEED_24.exists() and SEED_20.exists()):
        pytest.skip(
            f"the seeds are not checked out next to the repository ({SEEDS}); the fixture copy is used"
        )
    newer = parse_seed_24(SEED_24.read_text(encoding="utf-8"))
    older = parse_seed_20(SEED_20.read_text(encoding="utf-8"))
    assert len(newer) == 29 and len(older) == 19  # the parsers find every endpoint
    assert merged(newer, older) == seed_endpoints()


@pytest.mark.parametrize("endpoint", seed_endpoints(), ids=lambda e: f"{e['method']} {e['path']}")
def test_every_seed_admin_endpoint_is_documented_with_its_parameters(endpoint: dict[str, Any]) -> None:
    document = load()
    method, path = endpoint["method"], endpoint["path"]
    operation = document["paths"][path][method]
    documented = documented_parameters(document, operation)
    expected = {
        (name, location): (required, kind) for name, location, required, kind in endpoint["parameters"]
    }
    extra = EXTRA_PARAMETERS.get((method, path.removeprefix(ADMIN)), set())
    assert set(documented) == set(expected) | extra
    for key, (required, kind) in expected.items():
        documented_required, schema = documented[key]
        assert documented_required == required, key
        schema = deref(document, schema)
        if "anyOf" in schema:  # the seed's type first, then what a JSON body may send in its place
            schema = deref(document, schema["anyOf"][0])
        assert (schema["type"], schema.get("format")) == SEED_TYPES[kind], key


def test_the_extra_parameters_and_endpoints_are_not_in_the_seeds() -> None:
    """The allowances above stay honest: each names something the seeds really lack."""
    listed = {(e["method"], e["path"].removeprefix(ADMIN)): e for e in seed_endpoints()}
    for (method, path), extra in EXTRA_PARAMETERS.items():
        names = {(name, location) for name, location, _, _ in listed[(method, path)]["parameters"]}
        assert not extra & names, (method, path)
    assert not NOT_IN_THE_SEEDS & set(listed)
    documented = {(method, path.removeprefix(ADMIN)) for path, method, _ in operations(load())}
    assert NOT_IN_THE_SEEDS <= documented


# --- the document and the app ----------------------------------------------------------------------------


@SQLITE_ONLY
def test_every_admin_route_is_documented_and_vice_versa(settings: Any) -> None:
    found = registered_admin_routes(settings)
    assert found[ADMIN] == found[ADMIN_ALIAS], "every admin route answers under both prefixes"
    served = {(method.lower(), ADMIN + path) for method, path in found[ADMIN]}
    documented = {(method, path) for path, method, _ in operations(load())}
    assert sorted(served - documented) == [], "served but not documented"
    assert sorted(documented - served) == [], "documented but not served"
    assert load()["x-path-aliases"] == {ADMIN: ADMIN_ALIAS}


def test_every_operation_needs_the_bearer_token_and_names_the_ability_denial() -> None:
    document = load()
    assert document["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    for path, method, operation in operations(document):
        assert operation["security"] == [{"BearerToken": []}], path
        unauthorized = operation["responses"]["401"]["description"]
        assert "`jwt.decode_and_verify`" in unauthorized, path
        needs_ability = ROUTES[(method.upper(), path.removeprefix(ADMIN))] is not None
        assert ("`admin.ability.not_permitted`" in unauthorized) == needs_ability, path


def test_the_admin_entities_show_what_the_seed_models_show() -> None:
    """Seed 2.4's models (``# Models``), with the fields we add."""
    schemas = load()["components"]["schemas"]
    user = {"email", "uid", "role", "level", "otp", "state", "referral_uid", "data"}
    activity = {"user_ip", "user_agent", "topic", "action", "result", "data", "created_at"}
    models = {
        "Level": {"id", "key", "value"},
        "AdminLabelView": {"key", "value", "scope", "description", "created_at", "updated_at"},
        "APIKey": {"kid", "algorithm", "scope", "state", "secret", "created_at", "updated_at"},
        "AdminProfile": {
            "first_name",
            "last_name",
            "dob",
            "address",
            "postcode",
            "city",
            "country",
            "state",
            "metadata",
            "created_at",
            "updated_at",
        },
        "User": user,
        "UserWithProfile": user | {"profiles", "created_at", "updated_at"},
        "UserWithKYC": user
        | {"profiles", "labels", "phones", "documents", "data_storages", "created_at", "updated_at"},
        "Phone": {"country", "number", "validated_at"},
        "AdminDocument": {
            "upload",
            "doc_type",
            "doc_number",
            "doc_expire",
            "metadata",
            "created_at",
            "updated_at",
        },
        "DataStorage": {"title", "data", "created_at", "updated_at"},
        "ActivityWithUser": activity | {"user"},
        "AdminActivity": activity | {"admin", "target"},
    }
    for entity, fields in models.items():
        assert fields <= set(schemas[entity]["properties"]), entity


def test_the_checked_in_document_is_the_generators_output() -> None:
    assert (
        document_path("admin").read_text(encoding="utf-8")
        == json.dumps(build("admin"), indent=2, ensure_ascii=False) + "\n"
    ), "admin.json is out of date: run python -m identity.openapi.build"


@SQLITE_ONLY
@pytest.mark.parametrize("prefix", ["/api/v2/barong/resource", "/api/v2/resource"])
async def test_the_document_is_served_without_a_token(api: Any, prefix: str) -> None:
    response = await api.get(f"{prefix}/swagger_doc/admin")
    assert response.status == 200
    assert await response.read() == document_path("admin").read_bytes()


# --- real answers against the documented schemas --------------------------------------------------------


def test_the_validator_finds_what_breaks_a_schema() -> None:
    document = load()
    metrics = {"$ref": "#/components/schemas/Metrics"}
    good = {
        "signups": {"2024-03-01": 2},
        "sucessful_logins": {},
        "failed_logins": {},
        "pending_applications": 0,
    }
    assert violations(document, metrics, good) == []
    assert violations(document, metrics, {**good, "signups": {"2024-03-01": "2"}}) != []
    assert violations(document, metrics, {"signups": {}}) != []
    users = {"type": "array", "items": {"anyOf": [{"$ref": "#/components/schemas/User"}]}}
    assert violations(document, users, [{"uid": 5}]) != []


async def check(response: Any, method: str, path: str) -> Any:
    """``response`` is one the admin document describes for ``method path``: status, headers and body."""
    document = load()
    operation = document["paths"][ADMIN + path][method]
    status = str(response.status)
    assert status in operation["responses"], (method, path, response.status, await response.text())
    described = operation["responses"][status]
    for header in described.get("headers", {}):
        assert header in response.headers, (path, header)
    if "content" not in described:
        assert await response.read() == b"", (method, path)
        return None
    media = next(iter(described["content"]))
    assert response.content_type == media, (path, response.content_type)
    body = await response.json()
    assert violations(document, described["content"][media]["schema"], body) == [], (method, path, body)
    return body


@SQLITE_ONLY
async def test_admin_answers_match_the_document(api: Any, superadmin: Any, make_user: Any) -> None:
    member = (await make_user(email="member@example.com")).user
    uid = member.uid

    async def call(method: str, path: str, template: str | None = None, **kwargs: Any) -> Any:
        response = await api.request(method, f"{ADMIN}{path}", headers=superadmin.headers, **kwargs)
        return await check(response, method.lower(), template or path)

    await call(
        "POST", "/users/labels", json={"uid": uid, "key": "document", "value": "pending", "scope": "private"}
    )
    await call(
        "POST", "/users/labels", json={"uid": uid, "key": "document", "value": "pending", "scope": "private"}
    )
    await call(
        "PUT", "/users/labels", json={"uid": uid, "key": "document", "scope": "private", "value": "replaced"}
    )
    await call(
        "POST",
        "/users/labels/update",
        json={"uid": uid, "key": "email", "scope": "private", "value": "verified"},
    )
    await call("GET", "/users/labels/list")
    await call("GET", "/users/labels", params={"key": "email", "value": "verified"})
    await call("GET", "/users/documents/pending")
    assert await call("GET", "/users/documents/pending", params={"extended": "true"})
    await call(
        "POST", "/profiles", json={"uid": uid, "first_name": "Ada", "dob": "1815-12-10", "country": "gb"}
    )
    await call("PUT", "/profiles", json={"uid": uid, "state": "verified", "metadata": '{"note": "ok"}'})
    await call("GET", "/profiles")
    await call("GET", "/users")
    assert (await call("GET", "/users", params={"extended": "true"}))[0]["profiles"] is not None
    await call("GET", "/users", params={"level": "high", "limit": "0"})
    body = await call("GET", f"/users/{uid}", "/users/{uid}")
    assert body["labels"] and body["profiles"]
    await call("GET", "/users/ID0000000000", "/users/{uid}")
    await call("DELETE", "/users/labels", params={"uid": uid, "key": "document", "scope": "private"})
    await call("DELETE", "/users/labels", params={"uid": uid, "key": "document", "scope": "private"})
    await call("DELETE", "/users/data_storage", params={"uid": uid, "title": "settings"})
    await call("GET", "/api_keys", params={"uid": uid})
    await call("GET", "/api_keys")
    await call("POST", "/users/update", json={"uid": uid, "state": "banned"})
    await call("PUT", "/users", json={"uid": uid, "state": "active"})
    await call("PUT", "/users", json={"uid": uid})
    await call("POST", "/users/role", json={"uid": uid, "role": "support"})
    created = await call(
        "POST",
        "/permissions",
        json={"role": "member", "verb": "get", "path": "api/v2/new", "action": "accept"},
    )
    await call("POST", "/permissions", json={"role": "member", "verb": "fly"})
    await call("PUT", "/permissions", json={"id": created["id"], "topic": "news"})
    await call("GET", "/permissions", params={"limit": 2})
    await call("DELETE", "/permissions", params={"id": created["id"]})
    await call("DELETE", "/permissions", params={"id": created["id"]})
    restriction = await call(
        "POST", "/restrictions", json={"scope": "ip", "value": "10.0.0.1", "category": "blacklist"}
    )
    await call("PUT", "/restrictions", json={"id": restriction["id"], "state": "disabled"})
    await call("GET", "/restrictions", params={"scope": "ip"})
    await call("GET", "/restrictions", params={"scope": "planet"})
    await call("DELETE", "/restrictions", params={"id": restriction["id"]})
    await call("PUT", "/restrictions", json={"id": restriction["id"], "state": "enabled"})
    await call("POST", "/restrictions/whitelink", json={"expire_time": 2, "range": "hour"})
    await call("POST", "/restrictions/whitelink", json={"expire_time": 31})
    assert await call("GET", "/activities")
    assert await call("GET", "/activities/admin")
    await call("GET", "/activities", params={"from": "noon"})
    await call("GET", "/metrics")
    await call("GET", "/metrics", params={"created_to": "soon"})
    await call("GET", "/levels")
    await call("GET", "/abilities")
    for method, path in (("GET", "/levels"), ("GET", "/abilities"), ("POST", "/permissions")):
        await check(await api.request(method, f"{ADMIN}{path}", headers=browser()), method.lower(), path)
    other = bearer(await jwt_for(api, await make_user(role="member")))
    for method, path in (("GET", "/levels"), ("GET", "/abilities"), ("DELETE", "/restrictions")):
        await check(await api.request(method, f"{ADMIN}{path}", headers=other), method.lower(), path)
