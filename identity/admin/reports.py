"""What admins read (barong-behavior.md §8.3, §9): the activity log with its authors, the daily metrics,
and the levels.

``GET /admin/activities`` lists user-category activities with their user, ``GET /admin/activities/admin``
admin-category ones with their admin and target; both newest first, filtered as Barong's
``ActivityFilter`` does (topic, action, the author's uid or e-mail, the target's uid, ``from``/``to`` in
epoch seconds, both inclusive).  Parameters come in as the request's (strings from a query string or
form, any JSON type from a JSON body) and every problem is reported at once.

Where we differ from Barong, on purpose:

- A blank filter is no filter (Barong matched the empty string, which finds nothing).
- Admin activities written by the ``authz`` command have no author; they are listed (``admin`` is null)
  instead of being dropped by an inner join.
- Metrics count logins with 2FA (``login::2fa``) with the others, and ``created_from``/``created_to`` are
  validated and honoured (Barong 2.4 ignored them once its filter switched to ``from``/``to``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Row, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.activities import activity_from_row
from identity.admin.user_queries import pending_documents
from identity.db import activities, users
from identity.errors import ValidationFailed
from identity.labels import SqlLevelRepository
from identity.models import Activity, Level, User
from identity.paging import Page, page_params
from identity.storage import reading

ACTIVITY_PREFIX = "admin.activity"
METRICS_PREFIX = "admin.metrics"
CATEGORIES = ("user", "admin")
#: ``range`` of ``/activities/admin``: Barong accepts only ``created``.
RANGES = ("created",)
#: Login actions counted by the metrics: with and without 2FA.
LOGIN_ACTIONS = ("login", "login::2fa")

_INTEGER = re.compile(r"[+-]?\d+")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    """Which activities of a category to list: every field None means "any"."""

    category: str
    topic: str | None = None
    action: str | None = None
    uid: str | None = None  # the author's (the user, or the admin)
    email: str | None = None
    target_uid: str | None = None  # admin activities only
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # inclusive


@dataclass(frozen=True, slots=True)
class Author:
    """A user shown beside an activity, with its referrer's uid (Barong's ``User`` entity)."""

    user: User
    referral_uid: str | None = None


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    """An activity with its author (the user, or the admin; None for the CLI) and, for admin activities,
    the user it changed (None when there is none, or no such user)."""

    activity: Activity
    author: Author | None
    target: Author | None


@dataclass(frozen=True, slots=True)
class Metrics:
    """Barong's ``/admin/metrics``: per UTC day (``YYYY-MM-DD``), successful sign-ups, successful and
    failed logins; and how many users have a document waiting for review."""

    signups: dict[str, int]
    successful_logins: dict[str, int]
    failed_logins: dict[str, int]
    pending_applications: int


# --- parameters --------------------------------------------------------------------------------------


def _text(params: dict[str, Any], name: str, prefix: str, problems: list[str]) -> str | None:
    """An optional string filter: numbers are taken as their text (Grape coerces them), blank is none."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        problems.append(f"{prefix}.non_string_{name}")
        return None
    return value.strip() or None


def _epoch(params: dict[str, Any], name: str, prefix: str, problems: list[str]) -> datetime | None:
    """An optional moment in epoch seconds (an integer, or its digits)."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        problems.append(f"{prefix}.non_integer_{name}")
        return None
    if isinstance(value, str):
        if not _INTEGER.fullmatch(value.strip()) or not value.isascii():
            problems.append(f"{prefix}.non_integer_{name}")
            return None
        value = int(value.strip())
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        problems.append(f"{prefix}.invalid_{name}")
        return None


def activity_query(params: dict[str, Any], category: str) -> tuple[ActivityQuery, Page]:
    """The filters and page of an activity listing; raises :class:`ValidationFailed` with every problem.

    Keys: ``admin.activity.non_string_<name>`` (topic, action, uid, email, target_uid),
    ``admin.activity.non_integer_from``/``_to``, ``admin.activity.invalid_from``/``_to`` (out of range),
    ``admin.activity.invalid_range`` (admin activities), and the bare page keys.
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown activity category {category!r}")
    problems: list[str] = []
    topic = _text(params, "topic", ACTIVITY_PREFIX, problems)
    action = _text(params, "action", ACTIVITY_PREFIX, problems)
    uid = _text(params, "uid", ACTIVITY_PREFIX, problems)
    email = _text(params, "email", ACTIVITY_PREFIX, problems)
    target_uid = None
    if category == "admin":
        target_uid = _text(params, "target_uid", ACTIVITY_PREFIX, problems)
        range_ = params.get("range")
        if range_ not in (None, "") and range_ not in RANGES:
            problems.append(f"{ACTIVITY_PREFIX}.invalid_range")
    since = _epoch(params, "from", ACTIVITY_PREFIX, problems)
    until = _epoch(params, "to", ACTIVITY_PREFIX, problems)
    page = page_params(params, problems)
    if problems:
        raise ValidationFailed(problems)
    query = ActivityQuery(
        category, topic, action, uid, email.lower() if email else None, target_uid, since, until
    )
    return query, page


def _moment(params: dict[str, Any], name: str, problems: list[str], *, end: bool) -> datetime | None:
    """``created_from``/``created_to``: epoch seconds, an ISO 8601 date (a whole UTC day: its start for
    ``created_from``, its end for ``created_to``) or date and time (UTC unless it has an offset)."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        problems.append(f"{METRICS_PREFIX}.invalid_{name}")
        return None
    text = value.strip()
    try:
        if _INTEGER.fullmatch(text) and text.isascii():
            return datetime.fromtimestamp(int(text), UTC)
        if _DATE.fullmatch(text):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1) if end else day
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except (OverflowError, OSError, ValueError):
        problems.append(f"{METRICS_PREFIX}.invalid_{name}")
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def metrics_period(params: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The period of ``/admin/metrics`` (both ends inclusive, None for open); every problem at once:
    ``admin.metrics.invalid_created_from``, ``admin.metrics.invalid_created_to``."""
    problems: list[str] = []
    since = _moment(params, "created_from", problems, end=False)
    until = _moment(params, "created_to", problems, end=True)
    if problems:
        raise ValidationFailed(problems)
    return since, until


# --- queries -----------------------------------------------------------------------------------------

_USER_FIELDS = (
    "id",
    "uid",
    "email",
    "username",
    "role",
    "level",
    "state",
    "otp",
    "referral_id",
    "data",
    "created_at",
    "updated_at",
)


def _user_columns(table: FromClause, referrer: FromClause, name: str) -> list[Any]:
    columns = [table.c[field].label(f"{name}__{field}") for field in _USER_FIELDS]
    columns.append(referrer.c.uid.label(f"{name}__referral_uid"))
    return columns


def _author(row: Row[Any], name: str) -> Author | None:
    values = row._mapping
    if values[f"{name}__id"] is None:
        return None
    fields = {field: values[f"{name}__{field}"] for field in _USER_FIELDS}
    fields["otp"] = bool(fields["otp"])  # SQLite hands booleans back as integers
    return Author(User(**fields), values[f"{name}__referral_uid"])



def _day(conn: AsyncConnection, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, as SQL."""
    if conn.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores UTC wall-clock text


class AdminReports:
    """Reads the activity log, the metrics and the levels for admins."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._levels = SqlLevelRepository(engine)

    async def activities(self, query: ActivityQuery, page: Page) -> tuple[list[ActivityRecord], int]:
        """One page of the activities ``query`` selects, newest first, and how many it selects in all."""
        author, author_referrer = users.alias("author"), users.alias("author_referrer")
        target, target_referrer = users.alias("target"), users.alias("target_referrer")
        joined = activities.outerjoin(author, author.c.id == activities.c.user_id).outerjoin(
            author_referrer, author_referrer.c.id == author.c.referral_id
        )
        columns = [activities, *_user_columns(author, author_referrer, "author")]
        if query.category == "admin":
            joined = joined.outerjoin(target, target.c.uid == activities.c.target_uid).outerjoin(
                target_referrer, target_referrer.c.id == target.c.referral_id
            )
            columns += _user_columns(target, target_referrer, "target")
        conditions = self._conditions(query, author)
        listing: Select[Any] = (
            select(*columns)
            .select_from(joined)
            .where(*conditions)
            .order_by(activities.c.created_at.desc(), activities.c.id.desc())
            .offset(page.offset)
            .limit(page.limit)
        )
        counting = (
            select(func.count())
            .select_from(activities.outerjoin(author, author.c.id == activities.c.user_id))
            .where(*conditions)
        )
        async with reading(self._engine) as conn:
            total = int(await conn.scalar(counting) or 0)
            rows = (await conn.execute(listing)).all() if total > page.offset else []
        return [
            ActivityRecord(
                activity_from_row(row),
                _author(row, "author"),
                _author(row, "target") if query.category == "admin" else None,
            )
            for row in rows
        ], total

    @staticmethod
    def _conditions(query: ActivityQuery, author: FromClause) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [activities.c.category == query.category]
        if query.topic is not None:
            conditions.append(activities.c.topic == query.topic)
        if query.action is not None:
            conditions.append(activities.c.action == query.action)
        if query.uid is not None:
            conditions.append(author.c.uid == query.uid)
        if query.email is not None:
            conditions.append(func.lower(author.c.email) == query.email)
        if query.target_uid is not None:
            conditions.append(activities.c.target_uid == query.target_uid)
        if query.since is not None:
            conditions.append(activities.c.created_at >= query.since)
        if query.until is not None:
            conditions.append(activities.c.created_at <= query.until)
        return conditions

    async def metrics(self, since: datetime | None, until: datetime | None) -> Metrics:
        """Daily sign-ups and logins between ``since`` and ``until`` (inclusive; None: unbounded), and the
        users whose documents wait for review (as ``GET /users/documents/pending`` lists them)."""
        signup = and_(
            activities.c.topic == "account", activities.c.action == "signup", activities.c.result == "succeed"
        )
        login = and_(
            activities.c.topic == "session",
            activities.c.action.in_(LOGIN_ACTIONS),
            activities.c.result.in_(("succeed", "failed")),
        )
        conditions: list[ColumnElement[bool]] = [activities.c.category == "user", or_(signup, login)]
        if since is not None:
            conditions.append(activities.c.created_at >= since)
        if until is not None:
            conditions.append(activities.c.created_at <= until)
        waiting, _ = pending_documents(users.c.id)
        pending = select(func.count()).select_from(waiting.subquery())
        found: dict[str, dict[str, int]] = {"signup": {}, "succeed": {}, "failed": {}}
        async with reading(self._engine) as conn:
            day = _day(conn, activities.c.created_at).label("day")
            counted = (
                select(day, activities.c.topic, activities.c.result, func.count().label("n"))
                .where(*conditions)
                .group_by(day, activities.c.topic, activities.c.result)
            )
            for row in (await conn.execute(counted)).all():
                kind = "signup" if row.topic == "account" else row.result
                found[kind][str(row.day)] = found[kind].get(str(row.day), 0) + int(row.n)
            pending_count = int(await conn.scalar(pending) or 0)
        return Metrics(
            signups=dict(sorted(found["signup"].items())),
            successful_logins=dict(sorted(found["succeed"].items())),
            failed_logins=dict(sorted(found["failed"].items())),
            pending_applications=pending_count,
        )

    async def levels(self) -> Sequence[Level]:
        """Every level, by id."""
        return await self._levels.list_all()
