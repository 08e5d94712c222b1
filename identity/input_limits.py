"""The limits every value a client sends meets, whatever the endpoint: no NUL character in any string or key,
and JSON nested at most ``MAX_JSON_DEPTH`` levels deep.

PostgreSQL's text types cannot hold a NUL (SQLite's can: a NUL reaching a query was a 500 on one backend
only), and ``orjson`` writes at most 255 levels back out, so a value nested deeper is one the service could
store but never answer with.  No client of these APIs sends either.
"""

from __future__ import annotations

from typing import Any

#: Levels of arrays and objects a JSON value may nest, the request body itself counted as one.  Barong's
#: free-form fields (``data``, ``metadata``, a Geetest answer, a device) are a level or two deep.
MAX_JSON_DEPTH = 32
NUL = "\x00"


def value_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """``"invalid_characters"`` when a string or key anywhere in ``value`` holds a NUL, ``"too_deep"`` when
    it nests more than ``max_depth`` arrays and objects, else ``None``."""
    return _walk(value, max_depth, nul=True)


def too_deep(value: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` (a parsed JSON text) nests more than ``max_depth`` arrays and objects."""
    return _walk(value, max_depth, nul=False) is not None


def _walk(value: Any, max_depth: int, *, nul: bool) -> str | None:
    # Iterative: a value nested deeper than Python's recursion limit is exactly what is being looked for.
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if nul and NUL in item:
                return "invalid_characters"
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                return "too_deep"
            if isinstance(item, list):
                pending.extend((child, depth + 1) for child in item)
                continue
            for key, child in item.items():
                if nul and isinstance(key, str) and NUL in key:
                    return "invalid_characters"
                pending.append((child, depth + 1))
    return None
