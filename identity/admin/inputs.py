"""Reading the parameters of an admin change, with Grape's keys (barong-behavior.md §10).

The admin services take the raw parameters (from the API's query or body, or from the command line) and
collect every problem into a list, so that one answer names them all: a required parameter absent is
``<prefix>.missing_<name>``, present but blank ``<prefix>.empty_<name>``, of the wrong type
``<prefix>.invalid_<name>``.  Numbers are accepted where text is expected (Grape coerces them), and digit
strings where an integer is expected (query strings and forms carry only text).
"""

from __future__ import annotations

from typing import Any


def text_param(
    params: dict[str, Any], name: str, prefix: str, problems: list[str], *, required: bool
) -> str | None:
    """The parameter ``name`` stripped of surrounding whitespace; None when absent (or invalid)."""
    value = params.get(name)
    if value is None:
        if required:
            problems.append(f"{prefix}.missing_{name}")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        problems.append(f"{prefix}.invalid_{name}")
        return None
    text = str(value).strip()
    if not text:
        problems.append(f"{prefix}.empty_{name}")
        return None
    return text


#: The range of SQL's INTEGER (levels, restriction codes): a number beyond it would fail in the database,
#: so it is refused as a parameter instead.
INTEGER = 2**31


def as_integer(value: Any, *, bound: int | None = None) -> int | None:
    """``value`` as an int when it is one or a string of ASCII digits (an optional sign), else None; with a
    ``bound``, only in ``[-bound, bound)``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in ("+", "-") else text
        if not (digits.isascii() and digits.isdigit()):
            return None
        try:
            number = int(text)
        except ValueError:  # over 4300 digits: int() refuses them
            return None
    else:
        return None
    return number if bound is None or -bound <= number < bound else None


def integer_param(
    params: dict[str, Any],
    name: str,
    prefix: str,
    problems: list[str],
    *,
    required: bool,
    bound: int | None = None,
) -> int | None:
    """The parameter ``name`` as an integer; None when absent (or invalid)."""
    value = params.get(name)
    if value is None:
        if required:
            problems.append(f"{prefix}.missing_{name}")
        return None
    if isinstance(value, str) and not value.strip():
        problems.append(f"{prefix}.empty_{name}")
        return None
    number = as_integer(value, bound=bound)
    if number is None:
        problems.append(f"{prefix}.invalid_{name}")
    return number


def choice(value: str | None, allowed: tuple[str, ...], key: str, problems: list[str]) -> str | None:
    """``value`` lower-cased when it is one of ``allowed`` (case-insensitively); else ``key`` is reported."""
    if value is None:
        return None
    if value.lower() not in allowed:
        problems.append(key)
        return None
    return value.lower()
