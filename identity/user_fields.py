"""Validation of the user fields a client sends at sign-up (barong-behavior.md §4.2).

Every failing rule is reported, as Rails' model errors are: ``email.invalid``, ``username.too_short``,
``password.weak``, ``data.invalid_format``...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from identity.input_limits import too_deep
from identity.password_policy import PasswordPolicy

# RFC 5322's dot-atom local part and a dotted host name of LDH labels: strict enough to refuse what
# cannot be delivered, without the quoted-string corners no real provider hands out.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_USERNAME = re.compile(r"[a-z0-9]+")
MAX_EMAIL = 255
MAX_DATA = 1024


@dataclass(frozen=True, slots=True)
class NewUserFields:
    """Sign-up fields once validated (username lower-cased, data as JSON text)."""

    email: str
    password: str
    username: str | None
    data: str | None


def data_text(value: Any) -> tuple[str | None, list[str]]:
    """``data`` as JSON text: Barong takes a JSON string; an object sent in a JSON body is accepted too."""
    if value is None or value == "":
        return None, []
    if isinstance(value, (dict, list)):
        value = orjson.dumps(value).decode()
    if not isinstance(value, str):
        return None, ["data.invalid_format"]
    if len(value) > MAX_DATA:
        return None, ["data.too_long"]
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None, ["data.invalid_format"]
    if too_deep(parsed):
        return None, ["data.too_deep"]
    return value, []


def email_problems(email: str) -> list[str]:
    """``["email.invalid"]`` unless ``email`` is a deliverable-looking address of at most 255 characters."""
    return [] if len(email) <= MAX_EMAIL and _EMAIL.fullmatch(email) else ["email.invalid"]


def validate_new_user(
    email: str, password: str, username: Any, data: Any, passwords: PasswordPolicy
) -> tuple[NewUserFields | None, list[str]]:
    """The validated fields, or the list of every failing rule's key."""
    email = email.strip()
    problems = email_problems(email)
    name: str | None = None
    if username is not None and username != "":
        if not isinstance(username, str):
            problems.append("username.invalid")
        else:
            name = username.strip().lower()
            if len(name) < 4:
                problems.append("username.too_short")
            elif len(name) > 12:
                problems.append("username.too_long")
            if not _USERNAME.fullmatch(name):
                problems.append("username.invalid")
    inputs = [part for part in (email.split("@")[0], name) if part]
    problems.extend(passwords.problems(password, inputs))
    data_value, data_problems = data_text(data)
    problems.extend(data_problems)
    if problems:
        return None, problems
    return NewUserFields(email=email, password=password, username=name, data=data_value), []
