"""Pagination as Barong does it (barong-behavior.md §8.5): ``page`` and ``limit`` parameters, and the
``Total``, ``Page``, ``Per-Page`` and RFC 8288 ``Link`` headers on the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from identity.errors import ValidationFailed
from identity.http.responses import json_response

MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing: 1-based ``page`` of ``limit`` rows."""

    page: int = 1
    limit: int = MAX_LIMIT

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit() and value.strip().isascii():
        return int(value.strip())
    return None


def page_params(params: dict[str, Any]) -> Page:
    """``page`` (default 1, positive) and ``limit`` (default 100, 1..100); every problem reported at once.

    The keys are bare, as in Barong's resource and admin APIs: ``non_integer_page``, ``non_positive_page``,
    ``non_integer_limit``, ``invalid_limit``.
    """
    problems: list[str] = []
    page, limit = 1, MAX_LIMIT
    if params.get("page") not in (None, ""):
        page = _integer(params["page"])  # type: ignore[assignment]
        if page is None:
            problems.append("non_integer_page")
        elif page < 1:
            problems.append("non_positive_page")
    if params.get("limit") not in (None, ""):
        limit = _integer(params["limit"])  # type: ignore[assignment]
        if limit is None:
            problems.append("non_integer_limit")
        elif not 1 <= limit <= MAX_LIMIT:
            problems.append("invalid_limit")
    if problems:
        raise ValidationFailed(problems)
    return Page(page, limit)


def paginated(request: web.Request, items: list[Any], total: int, page: Page) -> web.Response:
    """A JSON list answer with the pagination headers for ``page`` of ``total`` rows."""
    response = json_response(items)
    response.headers["Total"] = str(total)
    response.headers["Page"] = str(page.page)
    response.headers["Per-Page"] = str(page.limit)
    last = max(1, -(-total // page.limit))
    links = [("first", 1)]
    if page.page > 1:
        links.append(("prev", min(page.page - 1, last)))
    if page.page < last:
        links.append(("next", page.page + 1))
    links.append(("last", last))
    url = request.rel_url  # relative: the service sits behind a gateway that knows the public origin
    response.headers["Link"] = ", ".join(
        f'<{url.update_query(page=number, limit=page.limit)}>; rel="{rel}"' for rel, number in links
    )
    return response
