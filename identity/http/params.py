"""Reading request parameters from a JSON or form body (Grape accepts both), with Barong's error keys.

Every parameter meets the input limits (``identity/input_limits.py``) here, whichever part of the request
carries it: the path's and the query string's before the handler runs (:func:`enforce_url_input_limits`,
called by the error mapping that wraps every API handler), the body's as it is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from identity.errors import MalformedRequest, ValidationFailed
from identity.input_limits import MAX_JSON_DEPTH, NUL, value_problem

#: A parameter name the error key may repeat (``first_name.invalid_characters``); any other is ``request``.
_KEY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def enforce_input_limits(params: Iterable[tuple[str, Any]]) -> None:
    """Refuse the first parameter holding a NUL (in its name, or in any string or key of its value) or
    nesting JSON too deep: ``400 <name>.invalid_characters`` or ``400 <name>.too_deep`` (``request.…``
    for a name not fit to be repeated in a key).

    ``params``: ``(name, value)`` pairs; the body holding them is the first of the levels a value may nest.
    """
    for name, value in params:
        problem = "invalid_characters" if NUL in name else value_problem(value, MAX_JSON_DEPTH - 1)
        if problem is not None:
            area = name if _KEY_NAME.fullmatch(name) else "request"
            raise MalformedRequest(f"{area}.{problem}")


def enforce_url_input_limits(request: web.Request) -> None:
    """:func:`enforce_input_limits` for the path's parameters and every pair of the query string."""
    enforce_input_limits(request.match_info.items())
    enforce_input_limits(request.query.items())


async def read_params(request: web.Request) -> dict[str, Any]:
    """The body's parameters (JSON object or form) merged over the query string's."""
    params: dict[str, Any] = dict(request.query)
    if not request.body_exists:
        return params
    content_type = request.content_type
    try:
        if content_type == "application/json":
            body = orjson.loads(await request.read())
            if not isinstance(body, dict):
                raise MalformedRequest("request.invalid_json")
            params.update(body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        elif content_type in ("", "application/octet-stream", "text/plain"):
            raw = await request.read()
            if raw.strip():
                body = orjson.loads(raw)
                if not isinstance(body, dict):
                    raise MalformedRequest("request.invalid_json")
                params.update(body)
        else:
            raise MalformedRequest("request.unsupported_media_type")
    except orjson.JSONDecodeError:
        raise MalformedRequest("request.invalid_json") from None
    except UnicodeDecodeError:
        raise MalformedRequest("request.invalid_encoding") from None
    except (ValueError, BadHttpMessage):  # aiohttp's form parser: no or bad boundary, bad part headers
        raise MalformedRequest("request.malformed") from None
    enforce_input_limits(params.items())
    return params


def required_strings(params: dict[str, Any], prefix: str, *names: str) -> list[str]:
    """The named parameters as strings; every missing, blank or non-string one reported at once."""
    problems: list[str] = []
    values: list[str] = []
    for name in names:
        value = params.get(name)
        if value is None:
            problems.append(f"{prefix}.missing_{name}")
        elif not isinstance(value, str):
            problems.append(f"{prefix}.invalid_{name}")
        elif not value.strip():
            problems.append(f"{prefix}.empty_{name}")
        values.append(value if isinstance(value, str) else "")
    if problems:
        raise ValidationFailed(problems)
    return values


def optional_string(params: dict[str, Any], prefix: str, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # clients send otp_code as a number
    if not isinstance(value, str):
        raise ValidationFailed(f"{prefix}.invalid_{name}")
    return value


def captcha_response(params: dict[str, Any], prefix: str) -> Any:
    """``captcha_response``: a string (reCAPTCHA) or an object (Geetest), else ``<prefix>.invalid_captcha_format``."""
    captcha = params.get("captcha_response")
    if captcha is not None and not isinstance(captcha, (str, dict)):
        raise ValidationFailed(f"{prefix}.invalid_captcha_format")
    return captcha
