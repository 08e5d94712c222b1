"""Reading the token API's requests: the ``request-id``, JSON bodies as Go's decoder reads them, fields.

Like the original (Go's ``encoding/json``), unknown fields are ignored and names match case-insensitively
(``clientID``, ``clientid``); unlike it, any JSON content type is accepted (the original answered 404 unless
the header was exactly ``application/json;charset=utf-8``) and every bad input is ``400 BAD_PARAMETERS``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from identity.errors import MalformedRequest
from identity.http.params import enforce_input_limits
from identity.user_fields import email_problems

#: A request id is any short run of visible ASCII (the original's formats changed between versions).
REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
MAX_TEXT = 255


def request_id(request: web.Request) -> str:
    """The ``request-id`` header (or, on a GET, the ``rid`` query parameter of a mailed link)."""
    value = request.headers.get("request-id") or (
        request.query.get("rid") if request.method == "GET" else None
    )
    if not value or not REQUEST_ID.fullmatch(value):
        raise MalformedRequest("request_id.invalid")
    return value


async def json_body(request: web.Request) -> dict[str, Any]:
    """The body's JSON object with lower-cased keys; ``null`` counts as an empty object."""
    content_type = request.content_type
    if request.headers.get("Content-Type") and not (
        content_type == "application/json" or content_type.endswith("+json") or content_type == "text/plain"
    ):
        raise MalformedRequest("request.unsupported_media_type")
    try:
        body = orjson.loads(await request.read())
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        raise MalformedRequest("request.invalid_json") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise MalformedRequest("request.invalid_json")
    enforce_input_limits(body.items())
    return {key.lower(): value for key, value in body.items()}


def text(body: dict[str, Any], name: str, *, max_length: int = MAX_TEXT, required: bool = False) -> str:
    """Field ``name`` as a string, "" when missing or null (refused as ``<name>.missing`` when ``required``:
    "" must then be sent); another type or an over-long one is refused."""
    value = body.get(name.lower())
    if value is None:
        if required:
            raise MalformedRequest(f"{name}.missing")
        return ""
    if not isinstance(value, str) or len(value) > max_length:
        raise MalformedRequest(f"{name}.invalid")
    return value


def integer(body: dict[str, Any], name: str, *, low: int, high: int) -> int:
    """Field ``name`` as a whole number in ``[low, high]``, 0 when missing or null."""
    value = body.get(name.lower())
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MalformedRequest(f"{name}.invalid")
    return value


def obj(body: dict[str, Any], name: str) -> dict[str, Any]:
    """Field ``name`` as an object with lower-cased keys, {} when missing or null."""
    value = body.get(name.lower())
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedRequest(f"{name}.invalid")
    return {key.lower(): item for key, item in value.items()}


def email(body: dict[str, Any]) -> str:
    """The ``email`` field: a deliverable-looking address (kept as written, as the identity API keeps it)."""
    value = text(body, "email").strip()
    if len(value) < 3 or email_problems(value):
        raise MalformedRequest("email.invalid")
    return value
