"""Users' personal data, the KYC profile (seed 2.6 ``/resource/profiles``): validation and SQL storage.

A user has at most one profile.  It is ``drafted`` until the user confirms it (``submitted``); an admin
then makes it ``verified`` or ``rejected``.  The user may change a drafted or rejected profile only.

``country`` is an ISO 3166-1 alpha-2 code (any case in, upper case stored): Barong accepts alpha-2 and
alpha-3; one form keeps the stored data uniform, and it is the form the GeoIP data and restrictions use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.db import profiles, users, utcnow
from identity.errors import ValidationFailed
from identity.input_limits import too_deep
from identity.models import Profile
from identity.storage import reading, transaction

PREFIX = "resource.profile"
TEXT_FIELDS = ("first_name", "last_name", "address", "postcode", "city", "country")
FIELDS = (*TEXT_FIELDS, "dob", "metadata")
#: Longest value of each text field (the column sizes).
MAX_LENGTH = {"first_name": 255, "last_name": 255, "address": 255, "postcode": 32, "city": 255}
MAX_METADATA = 5120
EDITABLE_STATES = ("drafted", "rejected")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# ISO 3166-1 alpha-2, every officially assigned code.
COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
    EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
    HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
    LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
    NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW""".split()
)


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """Validated profile input: the fields the client sent (None clears one), and whether it confirms."""

    values: dict[str, str | None]
    confirm: bool


def _boolean(value: Any) -> bool | None:
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def validate_profile(params: Mapping[str, Any], today: date, prefix: str = PREFIX) -> ProfileChange:
    """The fields among ``params`` (blanks squished, country upper-cased), every problem reported at once;
    parameter keys start with ``prefix`` (``resource.profile.invalid_dob``)."""
    problems: list[str] = []
    values: dict[str, str | None] = {}
    for name in FIELDS:
        if name not in params:
            continue
        raw = params[name]
        if name == "metadata" and isinstance(raw, dict):
            raw = orjson.dumps(raw).decode()  # an object in a JSON body
        if raw is None:
            values[name] = None
            continue
        if not isinstance(raw, str):
            problems.append(f"{prefix}.invalid_{name}")
            continue
        text = raw.strip() if name == "metadata" else " ".join(raw.split())
        values[name] = text or None
        if text:
            problems.extend(_field_problems(name, text, today, prefix))
    if values.get("country"):
        values["country"] = values["country"].upper()  # type: ignore[union-attr]
    confirm = _boolean(params.get("confirm"))
    if confirm is None:
        problems.append(f"{prefix}.invalid_confirm")
    if problems:
        raise ValidationFailed(problems)
    return ProfileChange(values, bool(confirm))


def _field_problems(name: str, text: str, today: date, prefix: str) -> list[str]:
    if name == "dob":
        try:
            born = date.fromisoformat(text) if _ISO_DATE.fullmatch(text) else None
        except ValueError:
            born = None
        if born is None:
            return [f"{prefix}.invalid_dob"]
        return [] if born < today else ["dob.invalid"]
    if name == "metadata":
        if len(text) > MAX_METADATA:
            return ["metadata.too_long"]
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return ["metadata.invalid_format"]
        if not isinstance(parsed, dict):
            return ["metadata.invalid_format"]
        return ["metadata.too_deep"] if too_deep(parsed) else []
    if name == "country":
        return [] if text.upper() in COUNTRIES else ["country.invalid"]
    return [f"{name}.too_long"] if len(text) > MAX_LENGTH[name] else []


def profile_from_row(row: Row[Any]) -> Profile:
    return Profile(
        id=row.id,
        user_id=row.user_id,
        state=row.state,
        first_name=row.first_name,
        last_name=row.last_name,
        dob=row.dob,
        address=row.address,
        postcode=row.postcode,
        city=row.city,
        country=row.country,
        metadata=row.metadata,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class ProfileExists(Exception):
    """Raised by ``create_in``: the user has a profile already (the caller's transaction is rolled back)."""


class SqlProfileRepository:
    """Reads and writes the ``profiles`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def for_user(self, user_id: int) -> list[Profile]:
        async with reading(self._engine) as conn:
            return await self.for_user_in(conn, user_id)

    @staticmethod
    async def for_user_in(conn: AsyncConnection, user_id: int) -> list[Profile]:
        query = select(profiles).where(profiles.c.user_id == user_id).order_by(profiles.c.id)
        return [profile_from_row(row) for row in (await conn.execute(query)).all()]

    async def create(self, user_id: int, change: ProfileChange) -> Profile | None:
        """The user's new profile (``submitted`` when confirmed, else ``drafted``); None when it has one."""
        try:
            async with transaction(self._engine) as conn:
                return await self.create_in(
                    conn, user_id, change.values, "submitted" if change.confirm else "drafted"
                )
        except ProfileExists:
            return None

    @staticmethod
    async def create_in(
        conn: AsyncConnection, user_id: int, values: dict[str, str | None], state: str
    ) -> Profile:
        """Insert the user's profile on ``conn``; :class:`ProfileExists` when the user has one already."""
        now = utcnow()
        # PostgreSQL: the user's row lock serialises concurrent creations.  SQLite: the transaction holds the
        # database's write lock from its start, so the count sees every committed profile.
        await conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
        result = await conn.execute(
            profiles.insert().values(user_id=user_id, state=state, created_at=now, updated_at=now, **values)
        )
        count = await conn.scalar(
            select(func.count()).select_from(profiles).where(profiles.c.user_id == user_id)
        )
        if (count or 0) > 1:
            raise ProfileExists()
        row = (
            await conn.execute(select(profiles).where(profiles.c.id == result.inserted_primary_key[0]))
        ).one()
        return profile_from_row(row)

    async def update_editable(self, user_id: int, change: ProfileChange) -> Profile | None:
        """Apply ``change`` to the user's drafted or rejected profile (``submitted`` when confirmed, else
        ``drafted``); None when it has none that it may edit."""
        state = "submitted" if change.confirm else "drafted"
        async with transaction(self._engine) as conn:
            editable = (profiles.c.user_id == user_id) & profiles.c.state.in_(EDITABLE_STATES)
            profile_id = await conn.scalar(
                select(profiles.c.id).where(editable).order_by(profiles.c.id.desc()).limit(1)
            )
            if profile_id is None:
                return None
            result = await conn.execute(
                update(profiles)
                .where(profiles.c.id == profile_id, profiles.c.state.in_(EDITABLE_STATES))
                .values(state=state, updated_at=utcnow(), **change.values)
            )
            if result.rowcount == 0:  # verified by an admin meanwhile
                return None
            row = (await conn.execute(select(profiles).where(profiles.c.id == profile_id))).one()
        return profile_from_row(row)
