"""JSON entities of the identity and resource APIs (Barong's ``UserWithFullInfo``, ``Profile``...)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from identity.models import Activity, DataStorage, Label, Phone, Profile, User
from identity.phones import mask_number


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


def masked_last_name(name: str | None) -> str | None:
    """Barong's submask: the first letter, then a star for every other character."""
    return name[:1] + "*" * (len(name) - 1) if name else name


def masked_dob(dob: str | None) -> str | None:
    """The year only: ``1990-**-**``."""
    return f"{dob[:4]}-**-**" if dob else dob


def profile_entity(profile: Profile, *, masked: bool) -> dict[str, Any]:
    """``API_V2_Entities_Profile``; ``masked`` (``API_DATA_MASKING``) hides the last name and birth date."""
    return {
        "first_name": profile.first_name,
        "last_name": masked_last_name(profile.last_name) if masked else profile.last_name,
        "dob": masked_dob(profile.dob) if masked else profile.dob,
        "address": profile.address,
        "postcode": profile.postcode,
        "city": profile.city,
        "country": profile.country,
        "state": profile.state,
        "metadata": orjson.loads(profile.metadata) if profile.metadata else None,  # validated JSON object
        "created_at": iso(profile.created_at),
        "updated_at": iso(profile.updated_at),
    }


def data_storage_entity(storage: DataStorage) -> dict[str, Any]:
    return {
        "title": storage.title,
        "data": storage.data,
        "created_at": iso(storage.created_at),
        "updated_at": iso(storage.updated_at),
    }


def activity_entity(activity: Activity) -> dict[str, Any]:
    """``API_V2_Entities_Activity`` (a user's own activity: no user or target fields)."""
    return {
        "id": activity.id,
        "user_ip": activity.user_ip,
        "user_ip_country": activity.user_ip_country,
        "user_agent": activity.user_agent,
        "topic": activity.topic,
        "action": activity.action,
        "result": activity.result,
        "data": activity.data,
        "created_at": iso(activity.created_at),
    }


def user_entity(user: User, referral_uid: str | None) -> dict[str, Any]:
    """Barong's ``API_V2_Entities_User``."""
    return {
        "email": user.email,
        "uid": user.uid,
        "role": user.role,
        "level": user.level,
        "otp": user.otp,
        "state": user.state,
        "referral_uid": referral_uid,
        "data": user.data,
        "username": user.username,
    }


def user_with_full_info(
    user: User,
    *,
    referral_uid: str | None = None,
    csrf_token: str | None = None,
    labels: Sequence[Label] = (),
    profiles: Sequence[Profile] = (),
    data_storages: Sequence[DataStorage] = (),
    phones: Sequence[Phone] = (),
    masked: bool = True,
) -> dict[str, Any]:
    """``API_V2_Entities_UserWithFullInfo`` (personal data submasked when ``masked``)."""
    entity: dict[str, Any] = {
        **user_entity(user, referral_uid),
        "labels": [label_entity(label) for label in labels],
        "phones": [phone_entity(phone, masked) for phone in phones],
        "profiles": [profile_entity(profile, masked=masked) for profile in profiles],
        "data_storages": [data_storage_entity(storage) for storage in data_storages],
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }
    if csrf_token is not None:
        entity["csrf_token"] = csrf_token
    return entity


def phone_entity(phone: Phone, masked: bool) -> dict[str, Any]:
    """Barong's ``Phone`` entity (the number submasked when API data masking is on)."""
    return {
        "country": phone.country,
        "number": mask_number(phone.number) if masked else phone.number,
        "validated_at": iso(phone.validated_at),
    }
