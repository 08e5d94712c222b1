"""Resource API: the user's documents and address proofs (``GET/POST /documents``, ``POST /addresses``) and
the owner's download of a document's file (``GET /documents/{id}/upload``).

Uploads are ``multipart/form-data`` read part by part with aiohttp's multipart reader (the app's
``client_max_size`` bounds ``request.post()`` only): each file part (``upload`` or ``upload[]``) is streamed
into the upload store, which refuses it at the first byte beyond the size limit (413) or when its content is
not of an allowed type (422).  Fields are small and bounded.  Nothing is written to SQL, and nothing stays on
disk, unless the whole request is accepted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import BadHttpMessage

from identity.documents import (
    DocumentDraft,
    DocumentService,
    address_draft,
    check_limit,
    document_draft,
    mask_doc_number,
)
from identity.errors import MalformedRequest, PayloadTooLarge, RecordNotFound
from identity.http.entities import iso
from identity.http.params import enforce_input_limits, read_params
from identity.http.resource.context import PREFIXES, RESOURCE, Handler, authenticated
from identity.http.responses import json_response
from identity.models import Document, User
from identity.uploads import StagedFile, UploadStore

DOCUMENTS = web.AppKey("documents", DocumentService)
UPLOADS = web.AppKey("uploads", UploadStore)

UPLOAD_FIELDS = ("upload", "upload[]")
CHUNK = 64 * 1024
MAX_FIELD_BYTES = 64 * 1024  # a text field (metadata included)
MAX_FIELDS = 32  # text parts in one request


def document_entity(prefix: str, document: Document, masking: bool) -> dict[str, Any]:
    """Barong's ``Document`` entity; ``upload`` is where the owner downloads the file."""
    return {
        "upload": f"{prefix}/documents/{document.id}/upload",
        "doc_type": document.doc_type,
        "doc_number": mask_doc_number(document.doc_number) if masking else document.doc_number,
        "doc_expire": document.doc_expire,
        "metadata": document.metadata,
        "created_at": iso(document.created_at),
        "updated_at": iso(document.updated_at),
    }


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def _field(part: BodyPartReader) -> str:
    data = b""
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise PayloadTooLarge("request.too_large")
    try:
        return data.decode(part.get_charset("utf-8"))
    except (UnicodeDecodeError, LookupError):
        raise MalformedRequest("request.invalid_encoding") from None


async def read_upload(
    request: web.Request, existing: int, limit: int
) -> tuple[dict[str, Any], list[StagedFile]]:
    """The request's fields and its staged files (a non-multipart body: its parameters, no files).

    Stops at the first file beyond the size, type or document-count limits; whatever was staged is
    discarded whenever this raises.
    """
    if request.content_type != "multipart/form-data":
        return await read_params(request), []
    store = request.app[UPLOADS]
    fields: dict[str, Any] = dict(request.query)
    staged: list[StagedFile] = []
    texts = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise MalformedRequest("request.malformed")  # a nested multipart: no client sends one
            if part.name in UPLOAD_FIELDS and part.filename:  # a browser's empty file input: filename=""
                check_limit(existing, len(staged) + 1, limit)
                staged.append(await store.stage(_chunks(part), part.headers.get(hdrs.CONTENT_TYPE)))
                continue
            texts += 1
            if texts > MAX_FIELDS:
                raise PayloadTooLarge("request.too_large")
            value = await _field(part)
            if part.name:
                fields[part.name] = value
        enforce_input_limits(fields.items())
    except (ValueError, BadHttpMessage):  # aiohttp's multipart parser: no or bad boundary, bad part headers
        await store.discard(staged)
        raise MalformedRequest("request.malformed") from None
    except BaseException:
        await store.discard(staged)
        raise
    return fields, staged


async def _store(
    request: web.Request, user: User, draft_of: Callable[[dict[str, Any], int], DocumentDraft]
) -> None:
    service = request.app[DOCUMENTS]
    existing = await service.count(user.id)
    check_limit(existing, 0, service.limit)  # before reading a byte of the files
    fields, staged = await read_upload(request, existing, service.limit)
    try:
        await service.add(user.id, draft_of(fields, len(staged)), staged)
    finally:
        await request.app[UPLOADS].discard(staged)  # the committed ones are no longer there


async def upload_documents(request: web.Request, user: User) -> web.StreamResponse:
    today = datetime.fromtimestamp(request.app[RESOURCE].clock(), UTC).date()
    await _store(request, user, lambda fields, files: document_draft(fields, files=files, today=today))
    return json_response({}, 201)


async def upload_address(request: web.Request, user: User) -> web.StreamResponse:
    await _store(request, user, lambda fields, files: address_draft(fields, files=files))
    return json_response({}, 201)


def list_documents(prefix: str) -> Callable[[web.Request, User], Any]:
    async def handle(request: web.Request, user: User) -> web.StreamResponse:
        masking = request.app[RESOURCE].masking
        documents = await request.app[DOCUMENTS].list(user.id)
        return json_response([document_entity(prefix, document, masking) for document in documents])

    handle.__name__ = "list_documents"
    return handle


async def download(request: web.Request, user: User) -> web.StreamResponse:
    """The file of one of the caller's documents; 404 ``record.not_found`` for any other."""
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise RecordNotFound("record.not_found")
    document, path = await request.app[DOCUMENTS].file_of(user.id, int(raw))
    extension = path.suffix
    headers = {
        hdrs.CONTENT_TYPE: document.content_type or "application/octet-stream",
        hdrs.CONTENT_DISPOSITION: f'attachment; filename="document-{document.id}{extension}"',
        "X-Content-Type-Options": "nosniff",
        hdrs.CACHE_CONTROL: "private, no-store",
    }
    return web.FileResponse(path, headers=headers)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/documents", wrap(authenticated(list_documents(prefix))))
        app.router.add_post(f"{prefix}/documents", wrap(authenticated(upload_documents)))
        app.router.add_get(f"{prefix}/documents/{{id}}/upload", wrap(authenticated(download)))
        app.router.add_post(f"{prefix}/addresses", wrap(authenticated(upload_address)))
