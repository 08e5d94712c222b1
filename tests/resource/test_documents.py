"""Documents and address proofs: multipart uploads streamed to the upload directory, refused whole (no row,
no file) when a file is too large, of a wrong type, or one too many; each file downloadable by its owner only."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from identity.documents import DocumentDraft, DocumentService, SqlDocumentRepository
from identity.errors import BadRequest
from identity.uploads import UploadStore
from tests.resource.helpers import RESOURCE, RESOURCE_ALIAS, bearer, jwt_for

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
DOCUMENTS = f"{RESOURCE}/documents"
ADDRESSES = f"{RESOURCE}/addresses"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 50
PASSPORT = {
    "doc_type": "Passport",
    "doc_number": "AA1234BB",
    "doc_expire": "3020-01-22",
    "doc_category": "front_side",
}


def form(
    fields: dict[str, str], files: list[tuple[bytes, str, str]] = (), name: str = "upload"
) -> aiohttp.FormData:  # type: ignore[assignment]
    data = aiohttp.FormData()
    for key, value in fields.items():
        data.add_field(key, value)
    for content, filename, content_type in files:
        data.add_field(name, content, filename=filename, content_type=content_type)
    return data


def stored(settings: Any) -> list[str]:
    """Every entry of the upload directory, temporary files included."""
    directory = Path(settings.data_dir) / "uploads"
    return sorted(os.listdir(directory)) if directory.is_dir() else []


async def post(client: Any, token: str, data: Any, path: str = DOCUMENTS) -> Any:
    return await client.post(path, data=data, headers=bearer(token))


async def listed(client: Any, token: str) -> list[dict[str, Any]]:
    response = await client.get(DOCUMENTS, headers=bearer(token))
    assert response.status == 200, await response.text()
    return await response.json()


async def errors(response: Any) -> tuple[int, list[str]]:
    return response.status, (await response.json())["errors"]


async def test_documents_are_stored_listed_and_downloadable_by_their_owner(
    api: Any, make_user: Any, settings: Any
) -> None:
    token = await jwt_for(api, await make_user())
    fields = {**PASSPORT, "metadata": json.dumps({"country": "UK"})}
    files = [(PNG, "front.png", "image/png"), (JPEG, "../../etc/passwd.jpg", "image/jpeg")]
    response = await post(api, token, form(fields, files, name="upload[]"))
    assert response.status == 201, await response.text()

    names = stored(settings)
    assert len(names) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}\.(png|jpg)", name) for name in names)
    documents = await listed(api, token)
    assert [document["doc_type"] for document in documents] == ["Passport", "Passport"]
    for document in documents:
        assert document["doc_number"] == "AA****BB"
        assert document["doc_expire"] == "3020-01-22"
        assert json.loads(document["metadata"]) == {"country": "UK"}
        assert document["created_at"] and document["updated_at"]
        assert re.fullmatch(rf"{RESOURCE}/documents/\d+/upload", document["upload"])

    for document, (content, _, content_type) in zip(documents, files, strict=True):
        response = await api.get(document["upload"], headers=bearer(token))
        assert response.status == 200
        assert await response.read() == content
        assert response.headers["Content-Type"] == content_type
        assert response.headers["Content-Disposition"].startswith("attachment;")
    alias = documents[0]["upload"].replace(RESOURCE, RESOURCE_ALIAS)
    assert (await api.get(alias, headers=bearer(token))).status == 200


async def test_a_document_of_another_user_is_not_found(api: Any, make_user: Any, settings: Any) -> None:
    owner = await jwt_for(api, await make_user())
    other = await jwt_for(api, await make_user())
    assert (await post(api, owner, form(PASSPORT, [(PDF, "scan.pdf", "application/pdf")]))).status == 201
    [document] = await listed(api, owner)
    assert await listed(api, other) == []
    response = await api.get(document["upload"], headers=bearer(other))
    assert await errors(response) == (404, ["record.not_found"])
    for path in (f"{DOCUMENTS}/999999/upload", f"{DOCUMENTS}/abc/upload", f"{DOCUMENTS}/-1/upload"):
        assert await errors(await api.get(path, headers=bearer(owner))) == (404, ["record.not_found"])
    assert await errors(await api.get(document["upload"])) == (401, ["jwt.decode_and_verify"])


@SQLITE_ONLY
async def test_document_numbers_are_shown_whole_without_data_masking(
    make_client: Any, make_user: Any
) -> None:
    client = await make_client(api_data_masking=False)
    token = await jwt_for(client, await make_user())
    assert (await post(client, token, form(PASSPORT, [(PNG, "a.png", "image/png")]))).status == 201
    [document] = await listed(client, token)
    assert document["doc_number"] == "AA1234BB"


async def test_a_file_beyond_the_size_limit_is_413_and_nothing_is_kept(
    make_client: Any, make_user: Any, settings: Any
) -> None:
    client = await make_client(upload_max_size=2048)
    token = await jwt_for(client, await make_user())
    small = (PNG, "small.png", "image/png")
    large = (PNG + bytes(2 * 1024 * 1024), "large.png", "image/png")  # refused at its first 2 KiB
    response = await post(client, token, form(PASSPORT, [small, large]))
    assert await errors(response) == (413, ["resource.documents.file_too_large"])
    assert await listed(client, token) == []
    assert stored(settings) == []


@SQLITE_ONLY
async def test_a_few_megabytes_pass_the_apps_body_limit(api: Any, make_user: Any, settings: Any) -> None:
    token = await jwt_for(api, await make_user())
    content = PDF + os.urandom(3 * 1024 * 1024)
    assert (await post(api, token, form(PASSPORT, [(content, "big.pdf", "application/pdf")]))).status == 201
    [document] = await listed(api, token)
    response = await api.get(document["upload"], headers=bearer(token))
    assert await response.read() == content


@pytest.mark.parametrize(
    ("content", "filename", "content_type"),
    [
        (b"just some text, not an image\n" * 20, "note.png", "image/png"),
        (PNG, "front.png", "image/jpeg"),  # declared one type, is another
        (PNG, "front.png", "application/octet-stream"),
        (b"GIF89a" + bytes(100), "anim.gif", "image/gif"),  # a real image, not an allowed type
        (b"", "empty.png", "image/png"),
    ],
)
@SQLITE_ONLY
async def test_a_file_of_a_wrong_type_is_422_and_nothing_is_kept(
    api: Any, make_user: Any, settings: Any, content: bytes, filename: str, content_type: str
) -> None:
    token = await jwt_for(api, await make_user())
    files = [(PNG, "ok.png", "image/png"), (content, filename, content_type)]
    response = await post(api, token, form(PASSPORT, files))
    assert await errors(response) == (422, ["resource.documents.invalid_format"])
    assert await listed(api, token) == []
    assert stored(settings) == []


async def test_a_user_may_keep_only_so_many_documents(
    make_client: Any, make_user: Any, settings: Any
) -> None:
    client = await make_client(upload_max_files=2)
    token = await jwt_for(client, await make_user())
    three = [(PNG, f"{n}.png", "image/png") for n in range(3)]
    response = await post(client, token, form(PASSPORT, three))
    assert await errors(response) == (400, ["resource.documents.limit_will_be_reached"])
    assert stored(settings) == []

    assert (await post(client, token, form(PASSPORT, three[:2]))).status == 201
    response = await post(client, token, form(PASSPORT, three[:1]))
    assert await errors(response) == (400, ["resource.documents.limit_will_be_reached"])
    assert len(await listed(client, token)) == 2
    assert len(stored(settings)) == 2


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("changes", "keys"),
    [
        (
            {"doc_type": None, "doc_number": None},
            ["resource.document.missing_doc_type", "resource.document.missing_doc_number"],
        ),
        (
            {"doc_type": " ", "doc_number": ""},
            ["resource.document.empty_doc_type", "resource.document.empty_doc_number"],
        ),
        ({"doc_expire": "blah"}, ["resource.documents.expire_not_a_date"]),
        ({"doc_expire": "2020-02-30"}, ["resource.documents.expire_not_a_date"]),
        ({"doc_expire": "2001-01-01"}, ["resource.documents.already_expired"]),
        ({"doc_category": "portrait"}, ["resource.documents.doc_category"]),
        ({"doc_type": "Library card"}, ["doc_type.inclusion"]),
        ({"doc_number": "AA/12;34"}, ["doc_number.invalid"]),
        ({"doc_number": "A" * 129}, ["doc_number.too_long"]),
        ({"metadata": "{ bar: baz }"}, ["metadata.invalid_format"]),
        ({"metadata": "[1, 2]"}, ["metadata.invalid_format"]),
    ],
)
async def test_bad_document_parameters_are_422_and_nothing_is_kept(
    api: Any, make_user: Any, settings: Any, changes: dict[str, Any], keys: list[str]
) -> None:
    token = await jwt_for(api, await make_user())
    fields = {k: v for k, v in {**PASSPORT, **changes}.items() if v is not None}
    response = await post(api, token, form(fields, [(PNG, "a.png", "image/png")]))
    assert await errors(response) == (422, keys)
    assert await listed(api, token) == []
    assert stored(settings) == []


@SQLITE_ONLY
async def test_document_types_match_regardless_of_case_and_expiry_is_optional(
    api: Any, make_user: Any, settings: Any
) -> None:
    token = await jwt_for(api, await make_user())
    fields = {"doc_type": "driver LICENSE", "doc_number": "D 1234-56"}
    assert (await post(api, token, form(fields, [(PNG, "a.png", "image/png")]))).status == 201
    [document] = await listed(api, token)
    assert document["doc_type"] == "driver LICENSE"
    assert document["doc_expire"] is None
    assert document["doc_number"] == "D *****56"


@SQLITE_ONLY
async def test_a_request_without_files_is_422(api: Any, make_user: Any) -> None:
    token = await jwt_for(api, await make_user())
    response = await post(api, token, form(PASSPORT))
    assert await errors(response) == (422, ["resource.document.missing_upload"])
    response = await api.post(DOCUMENTS, json=PASSPORT, headers=bearer(token))
    assert await errors(response) == (422, ["resource.document.missing_upload"])
    response = await api.post(DOCUMENTS, json={}, headers=bearer(token))
    assert await errors(response) == (
        422,
        [
            "resource.document.missing_doc_type",
            "resource.document.missing_doc_number",
            "resource.document.missing_upload",
        ],
    )
    assert await errors(await api.post(DOCUMENTS, data=form(PASSPORT))) == (401, ["jwt.decode_and_verify"])


async def test_an_address_proof_is_stored_as_an_address_document(
    api: Any, make_user: Any, settings: Any
) -> None:
    token = await jwt_for(api, await make_user())
    fields = {"country": "GB", "address": "10 Downing Street", "city": "London", "postcode": "SW1A 2AA"}
    response = await post(api, token, form(fields, [(PDF, "bill.pdf", "application/pdf")]), ADDRESSES)
    assert response.status == 201, await response.text()
    [document] = await listed(api, token)
    assert document["doc_type"] == "Address"
    assert document["doc_number"] is None
    assert json.loads(document["metadata"]) == fields
    assert len(stored(settings)) == 1


@SQLITE_ONLY
async def test_bad_address_parameters_are_422_and_nothing_is_kept(
    api: Any, make_user: Any, settings: Any
) -> None:
    token = await jwt_for(api, await make_user())
    response = await post(
        api, token, form({"country": "", "city": ""}, [(PNG, "a.png", "image/png")]), ADDRESSES
    )
    assert await errors(response) == (
        422,
        [
            "resource.address.empty_country",
            "resource.address.missing_address",
            "resource.address.missing_postcode",
        ],
    )
    fields = {"country": "GB", "address": "1 Main St", "city": "", "postcode": ""}
    response = await post(api, token, form(fields), ADDRESSES)
    assert await errors(response) == (422, ["resource.address.missing_upload"])
    response = await post(api, token, form(fields, [(b"text", "a.pdf", "application/pdf")]), ADDRESSES)
    assert await errors(response) == (422, ["resource.documents.invalid_format"])
    assert await listed(api, token) == []
    assert stored(settings) == []


async def test_files_are_removed_again_when_their_rows_cannot_be_written(
    services: Any, make_user: Any, tmp_path: Path
) -> None:
    # The rows are refused inside the transaction (here: the limit, as when a concurrent upload of the same
    # user got there first), after the files were moved into place: the files must go again.
    store = UploadStore(tmp_path / "uploads", max_size=1 << 20, content_types=("image/png",))
    service = DocumentService(SqlDocumentRepository(services.engine), store, limit=1)
    user = (await make_user()).user

    async def chunks() -> Any:
        yield PNG

    draft = DocumentDraft(doc_type="Passport", doc_number="AA1234BB")
    await service.add(user.id, draft, [await store.stage(chunks(), "image/png")])
    [kept] = os.listdir(store.directory)
    with pytest.raises(BadRequest) as refused:
        await service.add(user.id, draft, [await store.stage(chunks(), "image/png")])
    assert refused.value.keys == ["resource.documents.limit_will_be_reached"]
    assert os.listdir(store.directory) == [kept]
    assert [document.upload for document in await service.list(user.id)] == [kept]


@SQLITE_ONLY
@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=xyz", 'multipart/form-data; boundary=""'],
)
async def test_a_malformed_multipart_body_is_400(
    api: Any, make_user: Any, settings: Any, content_type: str
) -> None:
    token = await jwt_for(api, await make_user())
    body = b'--abc\r\nContent-Disposition: form-data; name="upload"; filename="a.png"\r\n\r\n' + PNG
    response = await api.post(DOCUMENTS, data=body, headers=bearer(token, **{"Content-Type": content_type}))
    assert await errors(response) == (400, ["request.malformed"])
    assert stored(settings) == []
