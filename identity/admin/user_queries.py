"""Which users an admin lists, and what the admin entities show of them (barong-behavior.md §8.3).

``GET /admin/users`` and ``GET /admin/users/documents/pending`` take the same filters (seed 2.4): ``uid``,
``email``, ``role``, ``level``, ``state`` (the user's columns), ``first_name``, ``last_name``, ``country``
(its profile's), and a time ``range`` (``created`` or ``updated``) bounded by ``from`` (inclusive) and ``to``
(exclusive), epoch seconds.  The users listing is ordered by ``order_by`` (a user column) and ``ordering``;
the pending one by how long the documents have waited.

Pending documents: Barong marks them with the private label ``document: pending`` (``replaced`` when the
user uploads again); our uploads set no label, so a user with documents and no private ``document`` label
at all waits for review too.

The records an entity shows (profiles; labels, phones, documents and data storages for ``UserWithKYC``) are
read for a whole page at once, one query a table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, Table, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from identity.admin.inputs import INTEGER, as_integer
from identity.db import data_storages, documents, labels, phones, profiles, users
from identity.errors import ValidationFailed
from identity.models import DataStorage, Document, Label, Phone, Profile, User
from identity.paging import Page, page_params
from identity.users import USER_COLUMNS, user_from_row

PREFIX = "admin.user"
#: User columns a listing may be ordered by (``order_by``); never the secrets.
ORDERABLE = (
    "id",
    "uid",
    "email",
    "username",
    "role",
    "level",
    "otp",
    "state",
    "referral_id",
    "created_at",
    "updated_at",
)
RANGES = ("created", "updated")
#: Values of the private ``document`` label of a user whose documents wait for review.
PENDING_DOCUMENT_VALUES = ("pending", "replaced")
_TEXT_FILTERS = ("uid", "email", "role", "state", "first_name", "last_name", "country")

R = TypeVar("R")


def as_boolean(value: Any) -> bool | None:
    """Grape's Boolean: true/false (any case), 1/0, or a JSON boolean; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    return None


@dataclass(frozen=True, slots=True)
class UserFilter:
    """The filters of a users listing (None: not filtered on) and its order."""

    uid: str | None = None
    email: str | None = None
    role: str | None = None
    state: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country: str | None = None
    level: int | None = None
    range: str = "created"
    since: datetime | None = None
    until: datetime | None = None
    order_by: str = "id"
    ordering: str = "asc"


@dataclass(frozen=True, slots=True)
class UserListing:
    """A listing request: the filter, the page, and whether the entity is the extended one."""

    filter: UserFilter
    page: Page
    extended: bool = False


def parse_listing(params: dict[str, Any], *, ordered: bool = True) -> UserListing:
    """The filters, ``extended``, ``page``/``limit`` and (when ``ordered``) ``ordering``/``order_by`` of
    ``params``; every problem reported at once (422).  A blank filter filters nothing."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name in _TEXT_FILTERS:
        raw = params.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            problems.append(f"{PREFIX}.invalid_{name}")
            continue
        values[name] = str(raw).strip()
    if values.get("country"):
        values["country"] = values["country"].upper()  # profiles store alpha-2 codes in upper case
    if params.get("level") not in (None, ""):
        level = as_integer(params["level"], bound=INTEGER)
        if level is None:
            problems.append(f"{PREFIX}.non_integer_level")
        values["level"] = level
    range_ = params.get("range") or "created"
    if range_ not in RANGES:
        problems.append(f"{PREFIX}.invalid_range")
        range_ = "created"
    for name, field in (("from", "since"), ("to", "until")):
        if params.get(name) in (None, ""):
            continue
        seconds = as_integer(params[name])
        if seconds is None:
            problems.append(f"{PREFIX}.non_integer_{name}")
            continue
        try:
            values[field] = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            problems.append(f"{PREFIX}.invalid_{name}")
    if ordered:
        ordering = params.get("ordering") or "asc"
        if ordering not in ("asc", "desc"):
            problems.append("user.ordering.invalid_ordering")  # Barong's keys, without the admin prefix
        order_by = params.get("order_by") or "id"
        if order_by not in ORDERABLE:
            problems.append("user.ordering.invalid_attribute")
        values["ordering"], values["order_by"] = ordering, order_by
    extended = False
    if params.get("extended") not in (None, ""):
        parsed = as_boolean(params["extended"])
        if parsed is None:
            problems.append(f"{PREFIX}.non_boolean_extended")
        extended = bool(parsed)
    page = page_params(params, problems)
    if problems:
        raise ValidationFailed(problems)
    return UserListing(UserFilter(range=range_, **values), page, extended)


def _conditions(wanted: UserFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    for name in ("uid", "email", "role", "state", "level"):
        value = getattr(wanted, name)
        if value is not None:
            found.append(users.c[name] == value)
    profile = {
        name: getattr(wanted, name)
        for name in ("first_name", "last_name", "country")
        if getattr(wanted, name)
    }
    if profile:
        found.append(
            exists().where(
                profiles.c.user_id == users.c.id, *(profiles.c[k] == v for k, v in profile.items())
            )
        )
    moment = users.c[f"{wanted.range}_at"]
    if wanted.since is not None:
        found.append(moment >= wanted.since)
    if wanted.until is not None:
        found.append(moment < wanted.until)
    return found


async def referral_uid_in(conn: AsyncConnection, user: User) -> str | None:
    """The uid of the user who referred ``user`` (None for none)."""
    if user.referral_id is None:
        return None
    return await conn.scalar(select(users.c.uid).where(users.c.id == user.referral_id))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as an admin entity shows it: the user, its referrer's uid, and the records asked for."""

    user: User
    referral_uid: str | None = None
    profiles: tuple[Profile, ...] = ()
    labels: tuple[Label, ...] = ()
    phones: tuple[Phone, ...] = ()
    documents: tuple[Document, ...] = ()
    data_storages: tuple[DataStorage, ...] = ()


@dataclass(frozen=True, slots=True)
class UserPage:
    """One page of a users listing: the views, how many users match in all, the page, and whether the
    views are the extended ones."""

    views: list[UserView]
    total: int
    page: Page
    extended: bool = False


#: What a view holds besides the user: nothing, its profiles, or everything ``UserWithKYC`` shows.
BASIC, WITH_PROFILES, KYC = "basic", "profiles", "kyc"

_referrer = users.alias("referrer")


def _with_referrer(query: Select[Any]) -> Select[Any]:
    return query.add_columns(_referrer.c.uid.label("referral_uid")).outerjoin(
        _referrer, _referrer.c.id == users.c.referral_id
    )


async def _page(
    conn: AsyncConnection, query: Select[Any], order: list[Any], page: Page, detail: str
) -> tuple[list[UserView], int]:
    total = int(await conn.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = (
        (
            await conn.execute(_with_referrer(query).order_by(*order).offset(page.offset).limit(page.limit))
        ).all()
        if total > page.offset
        else []
    )
    found = [(user_from_row(row), row.referral_uid) for row in rows]
    return await views_in(conn, found, detail), total


async def list_users(
    conn: AsyncConnection, wanted: UserFilter, page: Page, detail: str = BASIC
) -> tuple[list[UserView], int]:
    """One page of the users matching ``wanted`` in its order (``id`` breaks ties), and how many match."""
    column, tie = users.c[wanted.order_by], users.c.id
    order = [column.desc(), tie.desc()] if wanted.ordering == "desc" else [column.asc(), tie.asc()]
    query = select(*USER_COLUMNS).where(*_conditions(wanted))
    return await _page(conn, query, order, page, detail)


def pending_documents(*columns: Any) -> tuple[Select[Any], list[Any]]:
    """A query of ``columns`` of the users whose documents wait for review, and its order (longest waiting
    first).  The admin list and the metrics count the same users."""
    marked = (
        select(labels.c.user_id, labels.c.value, labels.c.updated_at.label("since"))
        .where(labels.c.key == "document", labels.c.scope == "private")
        .subquery("marked")
    )
    uploaded = (
        select(documents.c.user_id, func.min(documents.c.created_at).label("since"))
        .group_by(documents.c.user_id)
        .subquery("uploaded")
    )
    pending = (marked.c.value.in_(PENDING_DOCUMENT_VALUES)) | (
        marked.c.user_id.is_(None) & uploaded.c.user_id.is_not(None)
    )
    query = (
        select(*columns)
        .select_from(users)
        .outerjoin(marked, marked.c.user_id == users.c.id)
        .outerjoin(uploaded, uploaded.c.user_id == users.c.id)
        .where(pending)
    )
    return query, [func.coalesce(marked.c.since, uploaded.c.since).asc(), users.c.id.asc()]


async def users_with_pending_documents(
    conn: AsyncConnection, wanted: UserFilter, page: Page, detail: str = BASIC
) -> tuple[list[UserView], int]:
    """One page of the users whose documents wait for review (matching ``wanted``), longest waiting first."""
    query, order = pending_documents(*USER_COLUMNS)
    return await _page(conn, query.where(*_conditions(wanted)), order, page, detail)


async def users_with_label(
    conn: AsyncConnection, key: str, value: str, page: Page
) -> tuple[list[UserView], int]:
    """One page of the users holding a label ``key: value`` (of either scope), by id."""
    held = exists().where(labels.c.user_id == users.c.id, labels.c.key == key, labels.c.value == value)
    return await _page(conn, select(*USER_COLUMNS).where(held), [users.c.id.asc()], page, BASIC)


async def views_in(
    conn: AsyncConnection, found: list[tuple[User, str | None]], detail: str
) -> list[UserView]:
    """Views of ``found`` (user, referrer uid) with the records ``detail`` asks for, one query a table."""
    if detail == BASIC or not found:
        return [UserView(user, referral_uid) for user, referral_uid in found]
    ids = [user.id for user, _ in found]
    records: dict[str, dict[int, list[Any]]] = {"profiles": await _by_user(conn, profiles, Profile, ids)}
    if detail == KYC:
        records["labels"] = await _by_user(conn, labels, Label, ids)
        records["phones"] = await _by_user(conn, phones, Phone, ids)
        records["documents"] = await _by_user(conn, documents, Document, ids)
        records["data_storages"] = await _by_user(conn, data_storages, DataStorage, ids)
    return [
        UserView(
            user, referral_uid, **{name: tuple(by_user.get(user.id, ())) for name, by_user in records.items()}
        )
        for user, referral_uid in found
    ]


async def _by_user(
    conn: AsyncConnection, table: Table, record: type[R], user_ids: list[int]
) -> dict[int, list[R]]:
    """Rows of ``table`` belonging to ``user_ids`` as ``record`` values (whose fields are column names)."""
    names = [field.name for field in fields(record)]  # type: ignore[arg-type]
    query = select(table).where(table.c.user_id.in_(user_ids)).order_by(table.c.id)
    grouped: dict[int, list[R]] = defaultdict(list)
    for row in (await conn.execute(query)).all():
        grouped[row.user_id].append(record(**{name: row._mapping[name] for name in names}))
    return grouped
