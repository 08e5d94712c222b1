"""Admin API: metrics, levels and the caller's abilities (barong-behavior.md §8.3).

- ``GET /metrics`` (``read User``): daily sign-ups, successful and failed logins between ``created_from``
  and ``created_to``, and the number of users with a document pending review.  The answer keeps Barong's
  shape, key spelling included (``sucessful_logins``), which the admin front ends read.
- ``GET /levels`` (``read Level``): ``[{id, key, value}]``, by id.
- ``GET /abilities`` (any signed-in user): the caller role's entry of the abilities file, ``{}`` for a
  role without one.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from identity.admin.actor import Actor
from identity.admin.reports import metrics_period
from identity.http.admin.activities import REPORTS
from identity.http.admin.context import ADMIN, PREFIXES, admin
from identity.http.params import read_params
from identity.http.resource.context import Handler
from identity.http.responses import json_response


@admin("read", "User")
async def metrics(request: web.Request, _actor: Actor) -> web.Response:
    since, until = metrics_period(await read_params(request))
    found = await request.app[REPORTS].metrics(since, until)
    return json_response(
        {
            "signups": found.signups,
            "sucessful_logins": found.successful_logins,  # sic: Barong's key
            "failed_logins": found.failed_logins,
            "pending_applications": found.pending_applications,
        }
    )


@admin("read", "Level")
async def levels(request: web.Request, _actor: Actor) -> web.Response:
    found = await request.app[REPORTS].levels()
    return json_response([{"id": level.id, "key": level.key, "value": level.value} for level in found])


@admin(None, None)
async def abilities(request: web.Request, actor: Actor) -> web.Response:
    assert actor.user is not None
    return json_response(request.app[ADMIN].abilities.of_role(actor.user.role))


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both admin prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/metrics", wrap(metrics))
        app.router.add_get(f"{prefix}/levels", wrap(levels))
        app.router.add_get(f"{prefix}/abilities", wrap(abilities))
