"""Admin API: the activity log (barong-behavior.md §8.3, §9), ability ``read Activity``.

``GET /activities`` lists user-category activities, each with its user (Barong's ``ActivityWithUser``);
``GET /activities/admin`` admin-category ones, each with its admin and its target (``AdminActivity``).
Newest first, paginated; filters and keys in ``identity/admin/reports.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from identity.admin.actor import Actor
from identity.admin.reports import ActivityRecord, AdminReports, Author, activity_query
from identity.http.admin.context import PREFIXES, admin
from identity.http.entities import activity_entity, user_entity
from identity.http.pagination import paginated
from identity.http.params import read_params
from identity.http.resource.context import Handler

REPORTS = web.AppKey("reports", AdminReports)


def _user(author: Author | None) -> dict[str, Any] | None:
    return user_entity(author.user, author.referral_uid) if author else None


def activity_with_user(record: ActivityRecord) -> dict[str, Any]:
    """``ActivityWithUser``: the activity and its user."""
    return {**activity_entity(record.activity), "user": _user(record.author)}


def admin_activity(record: ActivityRecord) -> dict[str, Any]:
    """``AdminActivity``: the activity, the admin who acted (null for the ``authz`` command) and the user
    it concerned (``target``; null when none)."""
    return {
        **activity_entity(record.activity),
        "target_uid": record.activity.target_uid,
        "admin": _user(record.author),
        "target": _user(record.target),
    }


async def _listing(
    request: web.Request, category: str, entity: Callable[[ActivityRecord], dict[str, Any]]
) -> web.Response:
    query, page = activity_query(await read_params(request), category)
    records, total = await request.app[REPORTS].activities(query, page)
    return paginated(request, [entity(record) for record in records], total, page)


@admin("read", "Activity")
async def user_activities(request: web.Request, _actor: Actor) -> web.Response:
    return await _listing(request, "user", activity_with_user)


@admin("read", "Activity")
async def admin_activities(request: web.Request, _actor: Actor) -> web.Response:
    return await _listing(request, "admin", admin_activity)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both admin prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/activities", wrap(user_activities))
        app.router.add_get(f"{prefix}/activities/admin", wrap(admin_activities))
