"""Pagination headers on list answers: ``Total``, ``Page``, ``Per-Page`` and RFC 8288 ``Link``
(barong-behavior.md §8.5); the page parameters themselves are read by ``identity/paging.py``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from identity.http.responses import json_response
from identity.paging import Page


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
