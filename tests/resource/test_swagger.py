"""The OpenAPI documents: well-formed, faithful to seed 2.6 and to the app's routes, generated, and served.

openapi-spec-validator is not a dependency, so the documents are checked structurally: the version, every
operation's responses, every ``$ref``, every path parameter.  The seed's endpoint list is copied into
``seed_endpoints.json`` (CI clones only this repository); when the seed itself is present, the copy is
checked against it.
"""

from __future__ import annotations

import json
import pathlib
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from authz.app import build_app
from identity import openapi
from identity.http.resource import swagger
from identity.openapi import DOCUMENTS, document_path
from identity.openapi.build import METHODS, build_all

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seeds" / "003_626d89bf77fbf998.txt"
FIXTURE = Path(__file__).with_name("seed_endpoints.json")
AREAS = ("identity", "public", "resource")
#: The error body of each document when not Barong's ``{"errors": [...]}``: the token API's ``{code, message}``.
ERROR_SCHEMAS = {"financelime": "Failure"}
BARONG = "/api/v2/barong/"
SWAGGER = "/api/v2/barong/resource/swagger_doc"
#: Seed endpoints deliberately not implemented (each is listed in its document's description).
OMITTED = {("post", "/api/v2/barong/public/kyc")}
#: Seed types → the documented schema's (type, format); ``upload`` is a list of files instead of a string.
SEED_TYPES = {
    "string": ("string", None),
    "integer": ("integer", None),
    "boolean": ("boolean", None),
    "date": ("string", "date"),
}


def load(name: str) -> dict[str, Any]:
    return json.loads(swagger.DOCUMENTS[name])


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def deref(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = resolve(document, schema["$ref"])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return deref(document, schema["allOf"][0])
    return schema


def document_of(path: str) -> str:
    return path.removeprefix(BARONG).split("/", 1)[0]


# --- structure -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCUMENTS)
def test_document_is_structurally_valid_openapi(name: str) -> None:
    document = load(name)
    assert document["openapi"] == "3.0.3"
    assert document["info"]["title"] and document["info"]["version"] and document["info"]["description"]
    assert document["paths"]
    operation_ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(operation_ids) == len(set(operation_ids))
    for ref in refs(document):
        resolve(document, ref)
    for path, method, operation in operations(document):
        where = f"{name}: {method.upper()} {path}"
        assert path.startswith("/") and operation["summary"], where
        assert operation["responses"], where
        for code, response in operation["responses"].items():
            assert code == "default" or re.fullmatch(r"[1-5]\d\d", code), where
            assert response["description"], where
            if code == "default" or int(code) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": f"#/components/schemas/{ERROR_SCHEMAS.get(name, 'Error')}"}, where
        declared = set(re.findall(r"{(\w+)}", path))
        parameters = operation.get("parameters", [])
        in_path = {p["name"] for p in parameters if p["in"] == "path"}
        assert in_path == declared, where
        assert all(p.get("required") is True for p in parameters if p["in"] == "path"), where
        assert all(p["in"] in ("path", "query", "header", "cookie") and "schema" in p for p in parameters), (
            where
        )
        names = [(p["name"], p["in"]) for p in parameters]
        assert len(names) == len(set(names)), where
    if name in ERROR_SCHEMAS:
        error = document["components"]["schemas"][ERROR_SCHEMAS[name]]
        assert error["required"] == ["code", "message"] and error["properties"]["code"]["type"] == "integer"
        return
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["errors"] and error["properties"]["errors"]["items"] == {"type": "string"}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_form_bodies_accept_json_and_urlencoded_with_one_schema(name: str) -> None:
    document = load(name)
    for path, _method, operation in operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        content = body["content"]
        if name == "financelime":  # the token API reads JSON only, and fails on an empty body
            assert list(content) == ["application/json"] and body["required"] is True, path
            continue
        if "multipart/form-data" in content:
            assert list(content) == ["multipart/form-data"], path
            continue
        assert set(content) == {"application/json", "application/x-www-form-urlencoded"}, path
        assert (
            content["application/json"]["schema"] == content["application/x-www-form-urlencoded"]["schema"]
        ), path
        schema = deref(document, content["application/json"]["schema"])
        assert body["required"] == bool(schema.get("required")), path
        assert set(schema.get("required", [])) <= set(schema["properties"]), path


def test_resource_endpoints_need_the_bearer_token_but_swagger_doc_does_not() -> None:
    document = load("resource")
    scheme = document["components"]["securitySchemes"]["BearerToken"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for path, _method, operation in operations(document):
        if path.startswith(SWAGGER):
            assert operation["security"] == [], path
            assert "401" not in operation["responses"], path
        else:
            assert operation["security"] == [{"BearerToken": []}], path
            assert "401" in operation["responses"], path


@pytest.mark.parametrize("name", DOCUMENTS)
def test_paginated_lists_document_the_pagination_headers(name: str) -> None:
    document = load(name)
    for path, _method, operation in operations(document):
        query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if not {"page", "limit"} <= query:
            continue
        ok = operation["responses"]["200"]
        assert set(ok["headers"]) == {"Total", "Page", "Per-Page", "Link"}, path
        assert deref(document, ok["content"]["application/json"]["schema"])["type"] == "array", path


def test_the_entities_of_the_seed_are_documented() -> None:
    schemas = load("resource")["components"]["schemas"]
    entities = {
        "UserWithFullInfo": {
            "email",
            "uid",
            "role",
            "level",
            "otp",
            "state",
            "referral_uid",
            "data",
            "csrf_token",
            "username",
            "labels",
            "phones",
            "profiles",
            "data_storages",
            "created_at",
            "updated_at",
        },
        "Label": {"key", "value", "scope", "created_at", "updated_at"},
        "Phone": {"country", "number", "validated_at"},
        "Profile": {
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
        "DataStorage": {"title", "data", "created_at", "updated_at"},
        "APIKey": {"kid", "algorithm", "scope", "state", "secret", "created_at", "updated_at"},
        "Document": {
            "upload",
            "doc_type",
            "doc_number",
            "doc_expire",
            "metadata",
            "created_at",
            "updated_at",
        },
        "Activity": {
            "id",
            "user_ip",
            "user_ip_country",
            "user_agent",
            "topic",
            "action",
            "result",
            "data",
            "created_at",
        },
        "ServiceAccount": {"email", "uid", "role", "level", "state", "user", "created_at"},
        "User": {"email", "uid", "role", "level", "otp", "state", "referral_uid", "data", "username"},
    }
    for entity, fields in entities.items():
        assert fields <= set(schemas[entity]["properties"]), entity


# --- the seed --------------------------------------------------------------------------------------------


def parse_seed(text: str) -> list[dict[str, Any]]:
    """The endpoints of the seed's markdown (``# /path``, ``#METHOD``, ``#Parameters`` tables), up to ``# Models``."""
    endpoints: list[dict[str, Any]] = []
    path, section = "", None
    for line in text.splitlines():
        if line.startswith("# Models"):
            break
        if match := re.match(r"^# (/api/v2/\S.*)$", line):
            path = re.sub(r"\{(\w+)\s*\}", r"{\1}", match.group(1).strip())
        elif match := re.match(r"^#(GET|POST|PUT|PATCH|DELETE)$", line):
            endpoints.append({"method": match.group(1).lower(), "path": path, "parameters": []})
            section = None
        elif line.startswith("#"):
            section = line[1:].strip()
        elif section == "Parameters" and line.startswith("|") and not line.startswith(("| Name", "|---")):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            endpoints[-1]["parameters"].append([cells[0], cells[1], cells[3] == "Yes", cells[4]])
    return endpoints


def seed_endpoints() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))["endpoints"]


def test_the_fixture_is_the_seeds_endpoint_list() -> None:
    if not SEED.exists():
        pytest.skip(f"the seed is not checked out next to the repository ({SEED}); the fixture copy is used")
    assert parse_seed(SEED.read_text(encoding="utf-8")) == seed_endpoints()


def documented_parameters(document: dict[str, Any], operation: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """(name, seed location) → (required, schema) of the operation's path/query parameters and body fields."""
    found: dict[tuple[str, str], Any] = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] in ("path", "query"):
            found[(parameter["name"], parameter["in"])] = (
                parameter.get("required", False),
                parameter["schema"],
            )
    body = operation.get("requestBody")
    if body:
        media = body["content"].get("application/json") or body["content"]["multipart/form-data"]
        schema = deref(document, media["schema"])
        for field, field_schema in schema["properties"].items():
            found[(field, "formData")] = (field in schema.get("required", []), field_schema)
    return found


@pytest.mark.parametrize("endpoint", seed_endpoints(), ids=lambda e: f"{e['method']} {e['path']}")
def test_every_seed_endpoint_is_documented_with_its_parameters(endpoint: dict[str, Any]) -> None:
    method, path = endpoint["method"], endpoint["path"]
    document = load(document_of(path))
    if (method, path) in OMITTED:
        assert path not in document["paths"]
        assert f"{method.upper()} {path}" in document["info"]["description"]
        return
    operation = document["paths"][path][method]
    documented = documented_parameters(document, operation)
    expected = {
        (name, location): (required, kind) for name, location, required, kind in endpoint["parameters"]
    }
    assert set(documented) == set(expected)
    for key, (required, kind) in expected.items():
        documented_required, schema = documented[key]
        assert documented_required == required, key
        schema = deref(document, schema)
        if key[0] == "upload":
            assert schema["type"] == "array" and schema["items"]["format"] == "binary"
            continue
        if "anyOf" in schema:  # the seed's type first, then what a JSON body may send in its place
            schema = deref(document, schema["anyOf"][0])
        assert (schema["type"], schema.get("format")) == SEED_TYPES[kind], key


# --- the app's routes -----------------------------------------------------------------------------------


def app_routes(settings: Any) -> set[tuple[str, str]]:
    app = build_app(settings, settings.redis_url)
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"  # aiohttp adds HEAD to every GET
    }


@SQLITE_ONLY
def test_every_identity_public_and_resource_route_is_documented_and_vice_versa(settings: Any) -> None:
    routes = app_routes(settings)
    documented = {(method, path) for name in AREAS for path, method, _ in operations(load(name))}
    pattern = re.compile(r"^/api/v2/(barong/)?(identity|public|resource)/")
    served = {(method, path) for method, path in routes if pattern.match(path)}
    barong = {(m, p) for m, p in served if p.startswith(BARONG)}
    aliases = {(m, p.replace("/api/v2/", BARONG, 1)) for m, p in served if not p.startswith(BARONG)}
    assert barong == aliases, "every route answers under both prefixes"
    assert sorted(barong - documented) == [], "served but not documented"
    assert sorted(documented - barong) == [], "documented but not served"


@SQLITE_ONLY
def test_the_decision_endpoint_is_documented_for_every_verb(settings: Any) -> None:
    routes = app_routes(settings)
    assert ("*", "/api/v2/auth/{path}") in routes
    assert ("get", "/.well-known/jwks.json") in routes
    assert {("get", "/_authz/nginx"), ("get", "/_authz/nginx/denied")} <= routes
    document = load("auth")
    assert set(document["paths"]) == {
        "/api/v2/auth/{path}",
        "/.well-known/jwks.json",
        "/_authz/nginx",
        "/_authz/nginx/denied",
    }
    assert set(document["paths"]["/api/v2/auth/{path}"]) == set(METHODS)


# --- generation -----------------------------------------------------------------------------------------


def test_the_checked_in_documents_are_the_generators_output() -> None:
    generated = build_all()
    assert set(generated) == set(DOCUMENTS)
    for name, text in generated.items():
        assert document_path(name).read_text(encoding="utf-8") == text, (
            f"{name}.json is out of date: run python -m identity.openapi.build"
        )


# --- serving ---------------------------------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize("prefix", ["/api/v2/barong/resource", "/api/v2/resource"])
async def test_swagger_doc_serves_the_resource_document_without_a_token(api: Any, prefix: str) -> None:
    response = await api.get(f"{prefix}/swagger_doc")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.read() == document_path("resource").read_bytes()


@SQLITE_ONLY
@pytest.mark.parametrize("name", DOCUMENTS)
async def test_swagger_doc_name_serves_each_document(api: Any, name: str) -> None:
    response = await api.get(f"/api/v2/barong/resource/swagger_doc/{name}", params={"locale": "ru"})
    assert response.status == 200
    body = await response.json()
    assert body == json.loads(document_path(name).read_text(encoding="utf-8"))
    assert body["openapi"] == "3.0.3"


@SQLITE_ONLY
@pytest.mark.parametrize("name", ["admins", "Resource", "resource.json", "entities"])
async def test_an_unknown_document_is_not_found(api: Any, name: str) -> None:
    response = await api.get(f"/api/v2/resource/swagger_doc/{name}")
    assert response.status == 404
    assert await response.json() == {"errors": ["record.not_found"]}


@SQLITE_ONLY
async def test_documents_are_read_once_not_per_request(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_reading(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a document was read from disk while serving")

    with monkeypatch.context() as patch:
        patch.setattr(pathlib.Path, "read_bytes", no_reading)
        patch.setattr(openapi, "load_documents", no_reading)
        response = await api.get("/api/v2/barong/resource/swagger_doc/identity")
        body = await response.json()
    assert response.status == 200
    assert body["info"]["title"] == load("identity")["info"]["title"]


# --- real answers against the documented schemas --------------------------------------------------------

DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
DATE = re.compile(r"\d{4}-\d\d-\d\d")
#: The smallest PNG: a 1×1 transparent pixel.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000185d1"
    "14bd0000000049454e44ae426082"
)
TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


def violations(document: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema`` (the OpenAPI 3.0 subset of the documents, ``anyOf`` and
    ``additionalProperties`` included)."""
    if "$ref" in schema:
        return violations(document, resolve(document, schema["$ref"]), value, where)
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null"]
    found = [
        problem for part in schema.get("allOf", []) for problem in violations(document, part, value, where)
    ]
    if "anyOf" in schema:
        fits = [violations(document, part, value, where) for part in schema["anyOf"]]
        if all(fits):
            found.append(f"{where}: fits none of anyOf: {fits}")
    kind = schema.get("type")
    if kind is None:
        return found
    if not isinstance(value, TYPES[kind]) or (kind in ("integer", "number") and isinstance(value, bool)):
        return [*found, f"{where}: {value!r} is not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if schema.get("format") == "date-time" and not DATE_TIME.fullmatch(value):
        found.append(f"{where}: {value!r} is not a date-time")
    if schema.get("format") == "date" and not DATE.fullmatch(value):
        found.append(f"{where}: {value!r} is not a date")
    if kind == "array":
        for index, item in enumerate(value):
            found += violations(document, schema["items"], item, f"{where}[{index}]")
    if kind == "object":
        found += [f"{where}: {name} missing" for name in schema.get("required", []) if name not in value]
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                found += violations(document, properties[name], item, f"{where}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += violations(document, schema["additionalProperties"], item, f"{where}.{name}")
    return found


async def check(response: Any, name: str, method: str, path: str) -> Any:
    """``response`` is one the document ``name`` describes for ``method path``: status, headers and body."""
    document = load(name)
    operation = document["paths"][path][method]
    assert str(response.status) in operation["responses"], (
        method,
        path,
        response.status,
        await response.text(),
    )
    described = operation["responses"][str(response.status)]
    for header in described.get("headers", {}):
        if header not in ("Set-Cookie", "x-envoy-auth-headers-to-remove", "Authorization"):
            assert header in response.headers, (path, header)
    if "content" not in described:
        return None
    media = next(iter(described["content"]))
    if media == "*/*":
        return await response.read()
    assert response.content_type == media, (path, response.content_type)
    body = await response.json()
    assert violations(document, described["content"][media]["schema"], body) == [], (method, path, body)
    return body


@SQLITE_ONLY
async def test_identity_and_public_answers_match_their_documents(api: Any) -> None:
    from tests.identity.helpers import browser

    for name in ("identity", "public"):
        base = f"/api/v2/barong/{name}"
        for path in ("ping", "time", "version", "configs"):
            await check(await api.get(f"{base}/{path}"), name, "get", f"{base}/{path}")
        validate = f"{base}/password/validate"
        await check(await api.post(validate, json={"password": "Tr0ub4dor&3x"}), name, "post", validate)
        await check(await api.post(validate, json={}), name, "post", validate)
    await check(
        await api.get("/api/v2/barong/public/configs/auth0"),
        "public",
        "get",
        "/api/v2/barong/public/configs/auth0",
    )
    signup = "/api/v2/barong/identity/users"
    body = {"email": "doc@example.com", "password": "Str0ng-Passphrase-42"}
    await check(await api.post(signup, json=body, headers=browser()), "identity", "post", signup)
    await check(await api.post(signup, json=body, headers=browser()), "identity", "post", signup)
    login = "/api/v2/barong/identity/sessions"
    await check(await api.post(login, json=body, headers=browser()), "identity", "post", login)
    await check(
        await api.post(login, json={**body, "password": "wrong"}, headers=browser()),
        "identity",
        "post",
        login,
    )
    await check(await api.delete(login, headers=browser()), "identity", "delete", login)


@SQLITE_ONLY
async def test_resource_answers_match_the_resource_document(api: Any, make_user: Any) -> None:
    from tests.resource.helpers import bearer, jwt_for

    base = "/api/v2/barong/resource"
    account = await make_user()
    headers = bearer(await jwt_for(api, account))

    async def call(method: str, path: str, **kwargs: Any) -> Any:
        response = await api.request(method, f"{base}{path}", headers=headers, **kwargs)
        template = re.sub(
            r"/(labels|activity)/[^/]+$",
            lambda m: f"/{m.group(1)}/{{{'key' if m.group(1) == 'labels' else 'topic'}}}",
            path,
        )
        return await check(response, "resource", method.lower(), f"{base}{template}")

    await call("GET", "/users/me")
    await call("PUT", "/users/me", json={"data": '{"language": "en"}'})
    await call("PUT", "/users/me", json={"data": "not json"})
    await call("GET", "/users/activity/all", params={"limit": "5"})
    await call("GET", "/users/activity/nothing")
    await call("POST", "/labels", json={"key": "language", "value": "english"})
    await call("GET", "/labels")
    await call("GET", "/labels/language")
    await call("PATCH", "/labels/language", json={"value": "german"})
    await call("DELETE", "/labels/language")
    await call("GET", "/labels/language")
    await call(
        "POST",
        "/profiles",
        json={"first_name": "Ada", "last_name": "Lovelace", "dob": "1815-12-10", "country": "GB"},
    )
    await call("GET", "/profiles/me")
    await call("POST", "/data_storage", json={"title": "settings", "data": '{"theme": "dark"}'})
    await call("GET", "/users/me")
    await call("POST", "/otp/generate_qrcode")
    await call("POST", "/otp/enable", json={"code": "000000"})
    await call("GET", "/api_keys")
    await call("POST", "/api_keys", json={"algorithm": "HS256", "totp_code": "123456"})
    await call("GET", "/service_accounts")
    await call("POST", "/phones", json={"phone_number": "+44 7700 900123"})
    await call("POST", "/phones", json={"phone_number": "12"})
    await call("POST", "/phones/send_code", json={"phone_number": "+44 7700 900123"})
    await call(
        "POST", "/phones/verify", json={"phone_number": "+44 7700 900123", "verification_code": "000000"}
    )
    await call("GET", "/phones")
    form = aiohttp.FormData()
    form.add_field("doc_type", "passport")
    form.add_field("doc_number", "AB123456")
    form.add_field("upload", PNG, filename="scan.png", content_type="image/png")
    await call("POST", "/documents", data=form)
    form = aiohttp.FormData()
    form.add_field("doc_type", "passport")
    form.add_field("upload", b"just text", filename="scan.png", content_type="image/png")
    await call("POST", "/documents", data=form)
    (document,) = await call("GET", "/documents")
    upload = document["upload"]
    assert re.fullmatch(rf"{base}/documents/\d+/upload", upload)
    response = await api.get(upload, headers=headers)
    assert await check(response, "resource", "get", f"{base}/documents/{{id}}/upload") == PNG
    await call("GET", "/swagger_doc")
    anonymous = await api.get(f"{base}/users/me")
    await check(anonymous, "resource", "get", f"{base}/users/me")
    assert anonymous.status == 401
