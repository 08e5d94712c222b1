"""JSON entities of the identity API (Barong's ``UserWithFullInfo``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from identity.models import Label, User


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC to the second, as Barong's entities (``2021-06-15T10:20:30Z``).

    SQLite hands timestamps back without a zone; they were written in UTC.
    """
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def label_entity(label: Label) -> dict[str, Any]:
    return {
        "key": label.key,
        "value": label.value,
        "scope": label.scope,
        "created_at": iso(label.created_at),
        "updated_at": iso(label.updated_at),
    }


def user_with_full_info(
    user: User,
    *,
    referral_uid: str | None = None,
    csrf_token: str | None = None,
    labels: Sequence[Label] = (),
) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "email": user.email,
        "uid": user.uid,
        "role": user.role,
        "level": user.level,
        "otp": user.otp,
        "state": user.state,
        "referral_uid": referral_uid,
        "data": user.data,
        "username": user.username,
        "labels": [label_entity(label) for label in labels],
        "phones": [],
        "profiles": [],
        "data_storages": [],
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }
    if csrf_token is not None:
        entity["csrf_token"] = csrf_token
    return entity
