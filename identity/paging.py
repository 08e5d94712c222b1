"""Pages of a listing as Barong's resource and admin APIs take them (barong-behavior.md §8.5): ``page``
(default 1) and ``limit`` (default 100, at most 100).  The HTTP side (``Total``/``Link`` headers) is
``identity/http/pagination.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from identity.errors import ValidationFailed

MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing: 1-based ``page`` of ``limit`` rows."""

    page: int = 1
    limit: int = MAX_LIMIT

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


#: Pages beyond this are not integers the API takes: the offset stays within SQL's BIGINT, and int() never
#: sees the over-4300-digit strings it refuses with a ValueError.
MAX_PAGE = 2**31 - 1


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit() and value.strip().isascii():
        if len(value.strip()) > 12:
            return None
        number = int(value.strip())
    else:
        return None
    return number if abs(number) <= MAX_PAGE else None


def page_params(params: dict[str, Any], problems: list[str] | None = None) -> Page:
    """``page`` (default 1, positive) and ``limit`` (default 100, 1..100).

    The keys are bare, as in Barong's resource and admin APIs: ``non_integer_page``, ``non_positive_page``,
    ``non_integer_limit``, ``invalid_limit``.  With a ``problems`` list (the caller's other parameter
    errors) they are appended to it and a default page is returned, so that the caller reports every
    problem at once; without one they are raised as :class:`ValidationFailed`.
    """
    found: list[str] = []
    page, limit = 1, MAX_LIMIT
    if params.get("page") not in (None, ""):
        page = _integer(params["page"])  # type: ignore[assignment]
        if page is None:
            found.append("non_integer_page")
        elif page < 1:
            found.append("non_positive_page")
    if params.get("limit") not in (None, ""):
        limit = _integer(params["limit"])  # type: ignore[assignment]
        if limit is None:
            found.append("non_integer_limit")
        elif not 1 <= limit <= MAX_LIMIT:
            found.append("invalid_limit")
    if found:
        if problems is None:
            raise ValidationFailed(found)
        problems.extend(found)
        return Page()
    return Page(page, limit)
