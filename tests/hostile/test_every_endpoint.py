"""A NUL character, and JSON nested too deep, in every parameter of every operation the OpenAPI documents
describe, on both databases: each is refused by the input layer (400 ``<parameter>.invalid_characters`` or
``<parameter>.too_deep``; the token API's ``400 BAD_PARAMETERS``), never a 5xx.

Both backends, unlike the rest of the hostile suite: PostgreSQL's text types cannot hold a NUL where SQLite's
can, so a NUL that reached a query was a 500 on PostgreSQL only.  JSON deeper than 255 levels is one that
``orjson.dumps`` refuses to write again (a 500 on both).  Each operation gets the other fields it requires
with plausible values, so that a hostile value gets as far into the handler as it can.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest

from identity.openapi import DOCUMENTS
from tests.hostile.helpers import (
    DEEP,
    NUL,
    PNG,
    Field,
    Operation,
    as_form_value,
    deep_json_text,
    deep_object,
    documented_operations,
    nul_text,
    nul_values,
    plausible,
)
from tests.identity.financelime.helpers import DEVICE
from tests.identity.financelime.helpers import headers as token_headers
from tests.identity.helpers import browser, cheap_argon2
from tests.resource.helpers import bearer, jwt_for

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
#: Where each document's bearer JWT is minted (a path its caller's role may reach).
JWT_PATHS = {"resource": "api/v2/barong/resource/users/me", "admin": "api/v2/barong/admin/users"}


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


@dataclass
class Caller:
    """Who sends the hostile requests of one document: an active superadmin, and another user as the target
    of the fields that name one (``uid``)."""

    api: Any
    document: str
    headers: dict[str, str]
    target_uid: str

    async def send(
        self,
        operation: Operation,
        replaced: dict[str, Any],
        *,
        media: str | None = None,
        extra_query: dict[str, str] | None = None,
    ) -> Any:
        """``operation`` with its required fields plausible and the ``replaced`` ones (by name) as given."""

        def value(field: Field) -> Any:
            return replaced[field.name] if field.name in replaced else plausible(field, self.target_uid)

        def chosen(*where: str) -> list[Field]:
            return [f for f in operation.of(*where) if f.required or f.name in replaced]

        path = operation.path
        for field in operation.of("path"):
            path = path.replace(f"{{{field.name}}}", quote(str(value(field)), safe="/"))
        query = {field.name: as_form_value(value(field)) for field in chosen("query")}
        query.update(extra_query or {})
        body = {field.name: value(field) for field in chosen("body") if field.schema.get("type") != "array"}
        kwargs: dict[str, Any] = {"params": query, "headers": self.headers}
        if media == JSON:
            kwargs["json"] = body
        elif media == FORM:
            kwargs["data"] = {name: as_form_value(item) for name, item in body.items()}
        elif media == MULTIPART:
            form = aiohttp.FormData()
            for name, item in body.items():
                form.add_field(name, as_form_value(item))
            form.add_field("upload", PNG, filename="a.png", content_type="image/png")
            kwargs["data"] = form
        return await self.api.request(operation.method.upper(), path, **kwargs)


async def caller_of(document: str, api: Any, make_user: Any) -> Caller:
    admin = await make_user(role="superadmin")
    target = await make_user()
    if document in JWT_PATHS:
        headers = bearer(await jwt_for(api, admin, path=JWT_PATHS[document]))
    elif document == "financelime":
        login = {"clientID": "PWA", "device": DEVICE, "email": admin.user.email, "password": admin.password}
        response = await api.post("/v1/oauth", json=login, headers=token_headers())
        assert response.status == 200, await response.text()
        headers = token_headers((await response.json())["accessToken"])
    else:
        headers = browser()
    return Caller(api, document, headers, target.user.uid)


async def refusal(caller: Caller, response: Any, expected: tuple[int, str] | None) -> str | None:
    """What is wrong with ``response`` to a hostile request (``None``: a proper refusal).

    ``expected``: its status and error key: a 400 carries that key alone, a 422 (validation, which reports
    every problem) among others.  ``None``: any 4xx with an error body.
    """
    body = await response.read()
    shown = f"{response.status} {body[:160]!r}"
    if not 400 <= response.status < 500:
        return shown
    if response.method == "HEAD":
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return shown
    if caller.document == "financelime":
        good = parsed == {"code": 400, "message": "BAD_PARAMETERS"}
    elif expected is None:
        good = isinstance(parsed, dict) and bool(parsed.get("errors"))
    elif expected[0] == 400:
        good = (response.status, parsed) == (400, {"errors": [expected[1]]})
    else:
        good = response.status == expected[0] and expected[1] in parsed.get("errors", ())
    return None if good else shown


def nul_refusal(caller: Caller, name: str) -> tuple[int, str]:
    if caller.document == "auth":
        return 400, "authz.invalid_path"  # the decision endpoint's one path parameter
    return 400, f"{name}.invalid_characters"


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_a_nul_character_in_any_documented_parameter_is_refused(
    api: Any, make_user: Any, document: str
) -> None:
    caller = await caller_of(document, api, make_user)
    problems = []
    for operation in documented_operations(document):
        # (what, the parameter the error key names, the fields replaced, the body's media type, more query)
        cases: list[tuple[str, str, dict[str, Any], str | None, dict[str, str] | None]] = []
        for field in operation.of("path", "query"):
            nul = {field.name: nul_text(field, caller.target_uid)}
            cases.append((f"{field.where} {field.name}", field.name, nul, None, None))
        if document != "auth":  # the decision endpoint hands its query string to the upstream service
            cases.append(("an undocumented query parameter", "hostile", {}, None, {"hostile": NUL}))
        for media in operation.media_types:
            for field in operation.of("body"):
                if field.schema.get("type") == "array":
                    continue  # the files of an upload
                if media == JSON:
                    values = nul_values(field, caller.target_uid)
                else:
                    values = [("NUL", nul_text(field, caller.target_uid))]
                for case, value in values:
                    replaced = {field.name: value}
                    cases.append((f"{media} {field.name} {case}", field.name, replaced, media, None))
        for case, name, replaced, media, extra in cases:
            response = await caller.send(operation, replaced, media=media, extra_query=extra)
            problem = await refusal(caller, response, nul_refusal(caller, name))
            if problem:
                problems.append(f"{operation} {case}: {problem}")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("document", [name for name in DOCUMENTS if name != "auth"])
async def test_json_nested_too_deep_in_any_documented_field_is_refused(
    api: Any, make_user: Any, document: str
) -> None:
    caller = await caller_of(document, api, make_user)
    problems = []
    for operation in documented_operations(document):
        for media in operation.media_types:
            for field in operation.of("body"):
                # (what, the value, the refusal expected)
                cases: list[tuple[str, Any, tuple[int, str] | None]] = []
                if media == JSON:  # refused as the body is read
                    cases.append((f"{DEEP} levels", deep_object(), (400, f"{field.name}.too_deep")))
                if field.json_text:  # refused with the field's other problems
                    too_deep = (422, f"{field.name}.too_deep")
                    cases.append((f"JSON text of {DEEP} levels", deep_json_text(), too_deep))
                    # Beyond what a recursive parser takes (Python's json: a RecursionError), or too long.
                    cases.append(("JSON text of 5000 levels", deep_json_text(5000), None))
                for case, value, expected in cases:
                    response = await caller.send(operation, {field.name: value}, media=media)
                    problem = await refusal(caller, response, expected)
                    if problem:
                        problems.append(f"{operation} {media} {field.name} {case}: {problem}")
    assert problems == [], "\n".join(problems)
