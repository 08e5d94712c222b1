"""Users' identity and address documents (Barong's ``/resource/documents`` and ``/resource/addresses``).

A document is a row (type, number, expiry, metadata...) and a file in the upload store.  Validation follows
Barong's API and model: parameter keys ``resource.document.missing_<name>``, ``resource.documents.*`` for the
handler's checks, ``<attribute>.<error>`` for the model's.  ``DOC_NUM_LIMIT`` caps a user's documents; the
files and rows of one request are written all together or not at all.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.db import documents, users, utcnow
from identity.errors import BadRequest, RecordNotFound, ValidationFailed
from identity.input_limits import too_deep
from identity.models import Document
from identity.storage import reading, transaction
from identity.uploads import StagedFile, UploadStore

# Barong's DocumentTypes, matched case-insensitively; the type is stored as the client wrote it.
DOC_TYPES = (
    "passport",
    "driver license",
    "utility bill",
    "identity card",
    "institutional",
    "address",
    "residental",
)
DOC_CATEGORIES = ("front_side", "back_side", "selfie")
ADDRESS_TYPE = "Address"
LIMIT_REACHED = "resource.documents.limit_reached"
LIMIT_WILL_BE_REACHED = "resource.documents.limit_will_be_reached"
_DOC_NUMBER = re.compile(r"[A-Za-z0-9\-\s]+")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class DocumentDraft:
    """The validated fields of the documents of one request (one row per uploaded file)."""

    doc_type: str
    doc_number: str | None = None
    doc_expire: str | None = None
    doc_category: str | None = None
    identificator: str | None = None
    metadata: str | None = None


def mask_doc_number(number: str | None) -> str | None:
    """Barong's ``sub_masked_doc_number``: the first and last two characters stay (``AA****BB``)."""
    if number is None or len(number) <= 4:
        return number
    return number[:2] + "*" * (len(number) - 4) + number[-2:]


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    return value if isinstance(value, str) else None


def document_draft(fields: Mapping[str, Any], *, files: int, today: date) -> DocumentDraft:
    """Validate ``POST /documents`` fields (every failing rule reported at once, 422)."""
    problems: list[str] = []
    for name in ("doc_type", "doc_number"):
        value = fields.get(name)
        if value is None:
            problems.append(f"resource.document.missing_{name}")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"resource.document.empty_{name}")
    if files == 0:
        problems.append("resource.document.missing_upload")
    doc_expire = _text(fields, "doc_expire")
    expire: date | None = None
    if doc_expire is not None and doc_expire.strip():
        doc_expire = doc_expire.strip()
        try:
            if not _ISO_DATE.fullmatch(doc_expire):
                raise ValueError(doc_expire)
            expire = date.fromisoformat(doc_expire)
        except ValueError:
            problems.append("resource.documents.expire_not_a_date")
    else:
        doc_expire = None
    category = _text(fields, "doc_category")
    if category is not None and category not in DOC_CATEGORIES:
        problems.append("resource.documents.doc_category")
    if problems:
        raise ValidationFailed(problems)
    if expire is not None and expire < today:
        raise ValidationFailed("resource.documents.already_expired")
    doc_type = str(fields["doc_type"]).strip()
    doc_number = str(fields["doc_number"]).strip()
    if doc_type.lower() not in DOC_TYPES:
        problems.append("doc_type.inclusion")
    if len(doc_number) > 128:
        problems.append("doc_number.too_long")
    elif not _DOC_NUMBER.fullmatch(doc_number):
        problems.append("doc_number.invalid")
    metadata = _text(fields, "metadata")
    if metadata is not None:
        problems.extend(_metadata_problems(metadata))
    identificator = _text(fields, "identificator")
    if identificator is not None and len(identificator) > 255:
        problems.append("identificator.too_long")
    if problems:
        raise ValidationFailed(problems)
    return DocumentDraft(
        doc_type=doc_type,
        doc_number=doc_number,
        doc_expire=doc_expire,
        doc_category=category,
        identificator=identificator or secrets.token_hex(16),
        metadata=metadata,
    )


def address_draft(fields: Mapping[str, Any], *, files: int) -> DocumentDraft:
    """Validate ``POST /addresses``: ``country`` and ``address`` not blank, ``city`` and ``postcode`` present."""
    problems: list[str] = []
    for name in ("country", "address", "upload", "city", "postcode"):
        value = fields.get(name)
        if name == "upload":
            if files == 0:
                problems.append("resource.address.missing_upload")
        elif value is None:
            problems.append(f"resource.address.missing_{name}")
        elif not isinstance(value, str) or (name in ("country", "address") and not value.strip()):
            problems.append(f"resource.address.empty_{name}")
        elif len(value) > 1024:
            problems.append(f"{name}.too_long")
    if problems:
        raise ValidationFailed(problems)
    address = {name: str(fields[name]).strip() for name in ("country", "address", "city", "postcode")}
    return DocumentDraft(
        doc_type=ADDRESS_TYPE, identificator=secrets.token_hex(16), metadata=json.dumps(address)
    )


def _metadata_problems(text: str) -> list[str]:
    """``metadata`` must be a JSON object within the input limits' depth."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # the C parser recurses: thousands of levels are a RecursionError
        return ["metadata.invalid_format"]
    if not isinstance(parsed, dict):
        return ["metadata.invalid_format"]
    return ["metadata.too_deep"] if too_deep(parsed) else []


def _document(row: Row[Any]) -> Document:
    return Document(
        id=row.id,
        user_id=row.user_id,
        doc_type=row.doc_type,
        upload=row.upload,
        doc_number=row.doc_number,
        doc_expire=row.doc_expire,
        doc_category=row.doc_category,
        identificator=row.identificator,
        metadata=row.metadata,
        content_type=row.content_type,
        size=row.size,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlDocumentRepository:
    """Reads and writes the ``documents`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def count(self, user_id: int) -> int:
        async with reading(self._engine) as conn:
            query = select(func.count()).select_from(documents).where(documents.c.user_id == user_id)
            return int(await conn.scalar(query) or 0)

    async def for_user(self, user_id: int) -> list[Document]:
        query = select(documents).where(documents.c.user_id == user_id).order_by(documents.c.id)
        async with reading(self._engine) as conn:
            return [_document(row) for row in (await conn.execute(query)).all()]

    async def get(self, user_id: int, document_id: int) -> Document | None:
        query = select(documents).where(documents.c.id == document_id, documents.c.user_id == user_id)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return _document(row) if row else None

    async def add_all(
        self, user_id: int, draft: DocumentDraft, files: Sequence[tuple[str, StagedFile]], limit: int
    ) -> None:
        """One row per stored file, in one transaction; refused when the user would pass ``limit``."""
        now = utcnow()
        async with transaction(self._engine) as conn:
            # The user row lock makes concurrent uploads of one user count one after the other (PostgreSQL).
            await conn.scalar(select(users.c.id).where(users.c.id == user_id).with_for_update())
            existing = int(
                await conn.scalar(
                    select(func.count()).select_from(documents).where(documents.c.user_id == user_id)
                )
                or 0
            )
            check_limit(existing, len(files), limit)
            await conn.execute(
                documents.insert(),
                [
                    {
                        "user_id": user_id,
                        "doc_type": draft.doc_type,
                        "doc_number": draft.doc_number,
                        "doc_expire": draft.doc_expire,
                        "doc_category": draft.doc_category,
                        "identificator": draft.identificator,
                        "metadata": draft.metadata,
                        "upload": name,
                        "content_type": staged.content_type,
                        "size": staged.size,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for name, staged in files
                ],
            )


def check_limit(existing: int, adding: int, limit: int) -> None:
    """Barong's ``DOC_NUM_LIMIT`` checks: 400 ``limit_reached`` / ``limit_will_be_reached``."""
    if existing > limit:
        raise BadRequest(LIMIT_REACHED)
    if existing + adding > limit:
        raise BadRequest(LIMIT_WILL_BE_REACHED)


class DocumentService:
    """Storing a request's documents (files and rows together) and handing a user's files back."""

    def __init__(self, documents: SqlDocumentRepository, store: UploadStore, *, limit: int) -> None:
        self._documents = documents
        self._store = store
        self.limit = limit

    async def list(self, user_id: int) -> list[Document]:
        return await self._documents.for_user(user_id)

    async def count(self, user_id: int) -> int:
        return await self._documents.count(user_id)

    async def add(self, user_id: int, draft: DocumentDraft, staged: Sequence[StagedFile]) -> None:
        """Move the staged files into place and write their rows; on any failure neither remains."""
        names = await self._store.commit(staged)
        try:
            await self._documents.add_all(user_id, draft, list(zip(names, staged, strict=True)), self.limit)
        except BaseException:
            await self._store.remove(names)
            raise

    async def file_of(self, user_id: int, document_id: int) -> tuple[Document, Path]:
        """The user's document and its file; 404 ``record.not_found`` for anybody else's, or a lost file."""
        document = await self._documents.get(user_id, document_id)
        path = self._store.path_of(document.upload) if document else None
        if document is None or path is None:
            raise RecordNotFound("record.not_found")
        return document, path
