"""JSON entities of the admin API's users (seed 2.4 models): ``User``, ``UserWithProfile``, ``UserWithKYC``,
``AdminLabelView``, and the admin's ``Profile``, ``Phone`` and ``Document`` — nothing masked."""

from __future__ import annotations

import json
from typing import Any

from identity.admin.user_queries import UserView
from identity.http.entities import (
    data_storage_entity,
    iso,
    label_entity,
    phone_entity,
    profile_entity,
    user_entity,
)
from identity.models import Document, Label, Profile


def admin_label_entity(label: Label) -> dict[str, Any]:
    """``AdminLabelView``: the label with its description."""
    return {**label_entity(label), "description": label.description}


def admin_profile_entity(profile: Profile, uid: str | None = None) -> dict[str, Any]:
    """The admin's ``Profile``: last name and birth date in full; with ``uid`` when listed on its own."""
    entity = profile_entity(profile, masked=False)
    return {"uid": uid, **entity} if uid is not None else entity


def admin_document_entity(document: Document) -> dict[str, Any]:
    """The admin's ``Document``: the number in full; ``upload`` names the stored file."""
    return {
        "upload": document.upload,
        "doc_type": document.doc_type,
        "doc_number": document.doc_number,
        "doc_expire": document.doc_expire,
        "metadata": document.metadata,
        "created_at": iso(document.created_at),
        "updated_at": iso(document.updated_at),
    }


def admin_user_entity(view: UserView) -> dict[str, Any]:
    """``User``: the account's fields and its referrer's uid."""
    return user_entity(view.user, view.referral_uid)


def user_with_profile_entity(view: UserView) -> dict[str, Any]:
    """``UserWithProfile`` (``extended=true`` listings)."""
    return {
        **user_entity(view.user, view.referral_uid),
        "profiles": [admin_profile_entity(profile) for profile in view.profiles],
        "created_at": iso(view.user.created_at),
        "updated_at": iso(view.user.updated_at),
    }


def user_with_kyc_entity(view: UserView) -> dict[str, Any]:
    """``UserWithKYC``: the user with its profiles, labels, phones, documents and data storages."""
    return {
        **user_with_profile_entity(view),
        "labels": [admin_label_entity(label) for label in view.labels],
        "phones": [phone_entity(phone, masked=False) for phone in view.phones],
        "documents": [admin_document_entity(document) for document in view.documents],
        "data_storages": [data_storage_entity(storage) for storage in view.data_storages],
    }


def label_counts_entity(counts: list[tuple[str, str, int]]) -> dict[str, int]:
    """``GET /users/labels/list`` as Barong answers it (Rails' ``group(:key, :value).size`` in JSON): each
    private ``key``/``value`` pair in use, written as the text ``["key", "value"]`` (itself a JSON array),
    and how many users hold it."""
    return {json.dumps([key, value]): count for key, value, count in counts}
