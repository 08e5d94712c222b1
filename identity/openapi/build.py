"""Generate the OpenAPI 3.0.3 documents from their compact YAML description.

``python -m identity.openapi.build`` rewrites ``identity/openapi/<name>.json``; ``--check`` only says
whether the checked-in files are up to date (exit status 1 when they are not).

The description (``<name>.yml``) is short to read and write:

- ``entities``: entities of this document only, beside the shared ones of ``entities.yml`` (a name may not
  be both).
- ``prefix`` (paths are written relative to it), ``alias`` (the same paths without ``barong``),
  ``security: bearer`` (operations need the bearer JWT unless marked ``public: true``), ``omitted`` (seed
  endpoints deliberately left out), ``defaults`` (responses added to operations: ``input`` and ``all``
  to every one (``input``: what the input layer refuses in any parameter), ``bearer`` for protected ones,
  ``body`` for those with a request body; an operation's ``skip_defaults`` lists the groups that do not
  apply to it).  Groups giving the same code are merged (both descriptions, both keys); an operation's
  own response of a code replaces the defaults' one.
- Parameters and properties as ``"<type>[!|?] <description>"``: ``!`` required, ``?`` nullable; types
  ``string integer number boolean object date date-time binary``, ``[T]`` arrays, ``Name`` an entity of
  ``entities.yml``.  A mapping is an OpenAPI schema (``ref: Name`` stands for the ``$ref``).
- ``form``: the body, accepted as JSON and as an urlencoded form (one schema); ``multipart``: an upload.
- Responses: ``<code>: description`` or a mapping with ``description``, ``schema``, ``keys`` (the error
  keys), ``paginated`` (the Total/Page/Per-Page/Link headers), ``cookie`` (sets the session cookie),
  ``headers``, ``html`` (a ``text/html`` page is answered too).  Every 4xx/5xx answer carries the error
  envelope ``{"errors": [...]}``.
- ``failure: Name``: the error body is that entity instead (the token API's ``{code, message}``); the
  responses' ``keys`` are then its messages.  ``json``: a body taken as JSON only (always required).
- ``blank_query``: optional query parameters of ``GET`` operations that the service takes as absent when
  sent blank (``?page=``): ``true`` for all of them, or a list of names; they get ``allowEmptyValue``.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from identity.openapi import DOCUMENTS, HERE, document_path

OPENAPI_VERSION = "3.0.3"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SCALARS = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "object": {"type": "object"},
    "date": {"type": "string", "format": "date"},
    "date-time": {"type": "string", "format": "date-time"},
    "binary": {"type": "string", "format": "binary"},
}
PAGINATION_HEADERS = {
    "Total": {"description": "Number of rows over all pages.", "schema": {"type": "integer"}},
    "Page": {"description": "This page's number (1-based).", "schema": {"type": "integer"}},
    "Per-Page": {"description": "Rows per page (the `limit`).", "schema": {"type": "integer"}},
    "Link": {
        "description": 'RFC 8288 links to the first, previous, next and last pages (`<...>; rel="next"`).',
        "schema": {"type": "string"},
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


class DescriptionError(ValueError):
    """The YAML description is inconsistent (an unknown entity, an undeclared path parameter...)."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def schema_of(spec: Any) -> dict[str, Any]:
    """An OpenAPI schema from the shorthand ``"<type>[?] <description>"`` or a mapping."""
    if isinstance(spec, str):
        token, _, description = spec.strip().partition(" ")
        nullable = token.endswith("?")
        token = token.rstrip("?!")
        schema = _type_schema(token)
        if "$ref" in schema and (nullable or description):  # siblings of a $ref are ignored in 3.0: wrap it
            schema = {"allOf": [schema]}
        if nullable:
            schema["nullable"] = True
        if description.strip():
            schema["description"] = description.strip()
        return schema
    if isinstance(spec, dict):
        schema = {}
        for key, value in spec.items():
            if key == "ref":
                schema["$ref"] = f"#/components/schemas/{value}"
            elif key == "properties":
                schema[key] = {name: schema_of(prop) for name, prop in value.items()}
            elif key in ("items", "additionalProperties") and not isinstance(value, bool):
                schema[key] = schema_of(value)
            elif key in ("allOf", "oneOf", "anyOf"):
                schema[key] = [schema_of(item) for item in value]
            elif key == "type" and value not in ("string", "integer", "number", "boolean", "object", "array"):
                schema.update(_type_schema(value))
            else:
                schema[key] = copy.deepcopy(value)
        return schema
    raise DescriptionError(f"not a schema: {spec!r}")


def _type_schema(token: str) -> dict[str, Any]:
    if token.startswith("[") and token.endswith("]"):
        return {"type": "array", "items": _type_schema(token[1:-1])}
    if token in SCALARS:
        return dict(SCALARS[token])
    if token[:1].isupper():
        return _ref(token)
    raise DescriptionError(f"unknown type {token!r}")


def _parameter_spec(spec: Any) -> tuple[dict[str, Any], bool, str | None]:
    """(schema, required, description) of a parameter or body field."""
    if isinstance(spec, str):
        token, _, description = spec.strip().partition(" ")
        required = token.endswith("!")
        schema = schema_of(token)
        return schema, required, description.strip() or None
    if isinstance(spec, dict):
        spec = dict(spec)
        required = bool(spec.pop("required", False))
        description = spec.pop("description", None)
        return schema_of(spec), required, description
    raise DescriptionError(f"not a parameter: {spec!r}")


def _parameters(
    location: str, specs: dict[str, Any], *, force_required: bool = False
) -> list[dict[str, Any]]:
    parameters = []
    for name, spec in specs.items():
        schema, required, description = _parameter_spec(spec)
        parameter: dict[str, Any] = {"name": name, "in": location}
        if description:
            parameter["description"] = description
        if required or force_required:
            parameter["required"] = True
        parameter["schema"] = schema
        parameters.append(parameter)
    return parameters


def _body_schema(fields: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required = []
    for name, spec in fields.items():
        schema, is_required, description = _parameter_spec(spec)
        if description and "$ref" not in schema:
            schema["description"] = description
        properties[name] = schema
        if is_required:
            required.append(name)
    body: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        body["required"] = required
    return body


def operation_id(method: str, relative: str, area: str) -> str:
    words = [area, *[w for w in re.split(r"[/{}_.-]+", relative) if w]]
    return method + "".join(w[:1].upper() + w[1:] for w in words)


def _response(code: str, spec: Any, keys_default: str, failure: str | None = None) -> dict[str, Any]:
    if isinstance(spec, str):
        spec = {"description": spec}
    spec = dict(spec)
    description = spec.get("description") or keys_default
    keys = spec.get("keys") or []
    if keys:
        label = "Messages" if failure else "Error keys"
        description = f"{description.rstrip('.')}. {label}: " + ", ".join(f"`{key}`" for key in keys) + "."
    response: dict[str, Any] = {"description": description}
    headers: dict[str, Any] = {}
    if spec.get("paginated"):
        headers.update({name: {"$ref": f"#/components/headers/{name}"} for name in PAGINATION_HEADERS})
    if spec.get("cookie"):
        headers["Set-Cookie"] = {
            "description": "The session cookie (`_barong_session` unless configured otherwise), HttpOnly.",
            "schema": {"type": "string"},
        }
    for name, header in (spec.get("headers") or {}).items():
        schema, required, header_description = _parameter_spec(header)
        headers[name] = {"description": header_description or name, "schema": schema}
        if required:
            headers[name]["required"] = True
    if headers:
        response["headers"] = headers
    status = int(code) if str(code).isdigit() else 0
    content: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}} if spec.get("html") else {}
    if status >= 400 or code == "default":
        media: dict[str, Any] = {"schema": _ref(failure) if failure else ERROR_REF}
        if keys:
            media["example"] = {"code": status, "message": keys[0]} if failure else {"errors": keys[:1]}
        content["application/json"] = media
    elif "schema" in spec:
        content[spec.get("media", "application/json")] = {"schema": schema_of(spec["schema"])}
    if content:
        response["content"] = content
    return response


def _merged(first: Any, second: Any) -> dict[str, Any]:
    """One response of two default groups giving the same code: both descriptions, both lists of keys."""
    one, two = ({"description": s} if isinstance(s, str) else s for s in (first, second))
    keys = list(one.get("keys") or [])
    keys += [key for key in two.get("keys") or [] if key not in keys]
    merged = {**one, **two, "description": f"{one['description']}; {two['description']}"}
    return {**merged, "keys": keys} if keys else merged


def _operation(method: str, relative: str, spec: dict[str, Any], api: dict[str, Any]) -> dict[str, Any]:
    area = api["area"]
    spec = dict(spec)
    operation: dict[str, Any] = {}
    first = [w for w in relative.split("/") if w][:1]
    operation["tags"] = [spec.get("tag") or (first[0] if first and "{" not in first[0] else area)]
    operation["summary"] = spec["summary"]
    if spec.get("description"):
        operation["description"] = spec["description"].strip()
    operation["operationId"] = spec.get("id") or operation_id(method, relative, area)

    declared = set(re.findall(r"{(\w+)}", relative))
    path_specs = spec.get("path") or {}
    if set(path_specs) != declared:
        raise DescriptionError(
            f"{method} {relative}: path parameters {sorted(path_specs)} != {sorted(declared)}"
        )
    parameters = _parameters("path", path_specs, force_required=True)
    query = _parameters("query", spec.get("query") or {})
    blank = api.get("blank_query") if method == "get" else None
    for parameter in query:
        if blank and not parameter.get("required") and (blank is True or parameter["name"] in blank):
            parameter["allowEmptyValue"] = True
    parameters += query
    parameters += _parameters("header", spec.get("header") or {})
    parameters += _parameters("cookie", spec.get("cookie") or {})
    if parameters:
        operation["parameters"] = parameters

    body_name = operation["operationId"][:1].upper() + operation["operationId"][1:] + "Body"
    has_body = False
    if spec.get("form"):
        has_body = True
        body = _body_schema(spec["form"])
        api["_bodies"][body_name] = body
        operation["requestBody"] = {
            "required": bool(body.get("required")),
            "content": {
                "application/json": {"schema": _ref(body_name)},
                "application/x-www-form-urlencoded": {"schema": _ref(body_name)},
            },
        }
    elif spec.get("json"):
        has_body = True
        body = _body_schema(spec["json"])
        api["_bodies"][body_name] = body
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body_name)}},
        }
    elif spec.get("multipart"):
        has_body = True
        body = _body_schema(spec["multipart"])
        api["_bodies"][body_name] = body
        media: dict[str, Any] = {"schema": _ref(body_name)}
        if spec.get("encoding"):
            media["encoding"] = copy.deepcopy(spec["encoding"])
        operation["requestBody"] = {"required": True, "content": {"multipart/form-data": media}}

    protected = api.get("security") == "bearer" and not spec.get("public")
    responses: dict[str, Any] = {}
    codes: dict[str, Any] = {str(code): value for code, value in (spec.get("responses") or {}).items()}
    defaults = api.get("defaults") or {}
    groups = ["input", "all"] + (["bearer"] if protected else []) + (["body"] if has_body else [])
    added: dict[str, Any] = {}
    for group in groups:
        if group in (spec.get("skip_defaults") or ()):
            continue
        for code, value in (defaults.get(group) or {}).items():
            code = str(code)
            added[code] = _merged(added[code], value) if code in added else value
    for code, value in added.items():
        codes.setdefault(code, value)
    if not codes:
        raise DescriptionError(f"{method} {relative}: no responses")
    for code in sorted(codes, key=lambda c: (c == "default", c)):
        responses[code] = _response(code, codes[code], spec["summary"], api.get("failure"))
        if isinstance(codes[code], dict) and codes[code].get("paginated"):
            api["_paginated"] = True
    operation["responses"] = responses
    if api.get("security") == "bearer":
        operation["security"] = [] if spec.get("public") else [{"BearerToken": []}]
    elif spec.get("security") is not None:
        operation["security"] = copy.deepcopy(spec["security"])
    return operation


def _referenced(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _referenced(value, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, found)


def build(name: str, entities: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI document ``name`` built from ``<name>.yml`` (and ``entities.yml``)."""
    if entities is None:
        entities = yaml.safe_load((HERE / "entities.yml").read_text(encoding="utf-8"))
    api = yaml.safe_load((HERE / f"{name}.yml").read_text(encoding="utf-8"))
    api["_bodies"] = {}
    local = api.get("entities") or {}
    if set(local) & set(entities):
        raise DescriptionError(f"{name}: entities also in entities.yml: {sorted(set(local) & set(entities))}")
    entities = {**entities, **local}
    prefix = api.get("prefix", "")
    description = api["description"].strip()
    if api.get("alias"):
        description += (
            f"\n\nEvery path also answers under `{api['alias']}` in place of `{prefix}` (what a gateway that "
            "strips `barong` forwards); the documented paths use the Barong gateway naming."
        )
    if api.get("blank_query"):
        names = (
            "" if api["blank_query"] is True else " (" + ", ".join(f"`{n}`" for n in api["blank_query"]) + ")"
        )
        description += (
            f"\n\nAn optional query parameter{names} of a `GET` sent blank (`?page=`) is taken as absent "
            "(`allowEmptyValue`)."
        )
    if api.get("omitted"):
        description += "\n\nEndpoints of Barong 2.6 deliberately not implemented:\n" + "\n".join(
            f"- `{item['method'].upper()} {item['path']}`: {item['reason']}" for item in api["omitted"]
        )
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": api["title"],
            "version": api["version"],
            "description": description,
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "servers": [{"url": "/", "description": "This service (or the gateway in front of it)."}],
    }
    if api.get("alias"):
        document["x-path-aliases"] = {prefix: api["alias"]}
    if api.get("omitted"):
        document["x-omitted"] = [f"{item['method'].upper()} {item['path']}" for item in api["omitted"]]
    paths: dict[str, Any] = {}
    for relative, operations in api["paths"].items():
        item: dict[str, Any] = {}
        for method, spec in operations.items():
            methods = METHODS if method == "any" else (method,)
            for each in methods:
                if each not in METHODS:
                    raise DescriptionError(f"{relative}: unknown method {each!r}")
                item[each] = _operation(each, relative, spec, api)
        paths[prefix + relative] = item
    document["paths"] = paths

    used: set[str] = {api.get("failure") or "Error"}
    _referenced(paths, used)
    _referenced(api["_bodies"], used)
    schemas: dict[str, Any] = {}
    pending = sorted(used)
    while pending:
        entity = pending.pop()
        if entity in schemas or entity in api["_bodies"]:
            continue
        if entity not in entities:
            raise DescriptionError(f"{name}: unknown entity {entity!r}")
        schemas[entity] = schema_of(entities[entity])
        more: set[str] = set()
        _referenced(schemas[entity], more)
        pending.extend(sorted(more - set(schemas)))
    schemas.update(api["_bodies"])
    components: dict[str, Any] = {"schemas": dict(sorted(schemas.items()))}
    if api.get("_paginated"):
        components["headers"] = copy.deepcopy(PAGINATION_HEADERS)
    security_schemes = {}
    if api.get("security") == "bearer":
        security_schemes["BearerToken"] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The RS256 JWT the decision endpoint (`/api/v2/auth/...`) puts in the `Authorization` "
            "header it lets through; verified with the keys of `/.well-known/jwks.json`.",
        }
    security_schemes.update(copy.deepcopy(api.get("securitySchemes") or {}))
    if security_schemes:
        components["securitySchemes"] = security_schemes
    document["components"] = components
    if api.get("tags"):
        document["tags"] = copy.deepcopy(api["tags"])
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def build_all() -> dict[str, str]:
    """Every document, rendered as the text of its JSON file."""
    entities = yaml.safe_load((HERE / "entities.yml").read_text(encoding="utf-8"))
    return {name: render(build(name, entities)) for name in DOCUMENTS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m identity.openapi.build", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="only check that the JSON files are up to date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in build_all().items():
        path: Path = document_path(name)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python -m identity.openapi.build)", file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
