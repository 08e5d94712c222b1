"""Helpers of the hostile-input tests: raw HTTP requests (the client normalises paths), forged tokens, and
the checks every refusal must pass."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.authz.helpers import signing_key_pem

MB = 1_000_000  # characters: the body stays under the app's 1 MiB limit with its JSON around it
NESTED = b"[" * 100_000 + b"]" * 100_000
SQL = "' OR '1'='1'; DROP TABLE users; --"
CRLF = "x\r\nSet-Cookie: injected=1\r\nX-Injected: 1"

#: Hostile JSON (or raw) bodies sent to every body-reading endpoint: ``(name, bytes, content type)``.
BODIES: list[tuple[str, bytes, str]] = [
    ("invalid utf-8", b'{"email": "\xff\xfe\xfd", "password": "\xc3\x28"}', "application/json"),
    ("invalid utf-8 as text", b"\xff\xfe{", "text/plain"),
    ("nested arrays 100k levels", NESTED, "application/json"),
    ("nested objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json"),
    ("huge number", b'{"email": 1e999999, "password": -1e999999}', "application/json"),
    ("truncated json", b'{"email": "a@b.c", "password": ', "application/json"),
    ("json array", b'[{"email": "a@b.c"}]', "application/json"),
    ("json string", b'"hello"', "application/json"),
    ("json null", b"null", "application/json"),
    ("many keys", orjson.dumps({f"k{i}": i for i in range(60_000)}), "application/json"),
    ("unsupported media type", b"<xml/>", "application/xml"),
    ("form with invalid utf-8", b"email=%ff%fe&password=%c3%28", "application/x-www-form-urlencoded"),
    ("multipart garbage", b"--x\r\nnot a part", "multipart/form-data; boundary=x"),
    ("multipart without boundary", b"--x\r\n", "multipart/form-data"),
]


def hostile_objects(*fields: str) -> list[tuple[str, dict[str, Any]]]:
    """JSON objects with ``fields`` missing, empty, 1 MB long, of the wrong type, or injection strings."""
    cases: list[tuple[str, dict[str, Any]]] = [("missing", {})]
    for name, value in [
        ("empty", ""),
        ("blank", "   "),
        ("1 MB", "a" * MB),
        ("integer", 12345),
        ("float", 1.5e308),
        ("big integer", 10**30),
        ("boolean", True),
        ("null", None),
        ("list", ["a", "b"]),
        ("object", {"$ne": ""}),
        ("sql injection", SQL),
        ("crlf", CRLF),
        ("nul", "a\x00b"),
    ]:
        # 1 MB in every field at once would exceed the body limit: that case is the 413 one.
        chosen = fields[:1] if name == "1 MB" else fields
        cases.append((name, dict.fromkeys(chosen, value)))
    return cases


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


async def raw_request(client: Any, head: bytes, body: bytes = b"") -> RawResponse:
    """Send ``head`` (request line and headers, without the blank line) as is, read the whole answer."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    header_part, _, payload = data.partition(b"\r\n\r\n")
    lines = header_part.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        payload = _unchunk(payload)
    return RawResponse(int(lines[0].split()[1]), headers, payload)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


def errors_body(body: bytes) -> list[str]:
    """The error keys of a ``{"errors": [...]}`` body (fails on any other shape)."""
    parsed = orjson.loads(body)
    assert isinstance(parsed, dict) and list(parsed) == ["errors"], parsed
    keys = parsed["errors"]
    assert keys and all(isinstance(key, str) and key for key in keys), parsed
    return keys  # type: ignore[no-any-return]


def financelime_body(body: bytes, status: int) -> str:
    """The message of a token API error body ``{"code": status, "message": ...}``."""
    parsed = orjson.loads(body)
    assert isinstance(parsed, dict) and parsed.keys() == {"code", "message"}, parsed
    assert parsed["code"] == status and isinstance(parsed["message"], str), parsed
    return parsed["message"]  # type: ignore[no-any-return]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(claims: dict[str, Any], header: dict[str, Any]) -> str:
    """A JWT with ``alg: none`` (or any header) and an empty signature."""
    return f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}."


def public_key_pem() -> bytes:
    key = serialization.load_pem_private_key(signing_key_pem().encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@lru_cache(maxsize=1)
def foreign_key_pem() -> str:
    """An RSA key the service does not know."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def hs256_with_public_key(claims: dict[str, Any], kid: str | None) -> str:
    """The algorithm-confusion forgery: HMAC-SHA256 keyed with the service's *public* key PEM."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    signature = hmac.new(public_key_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


# --- every documented operation ----------------------------------------------------------------------------

#: A NUL inside a string: PostgreSQL's text types cannot hold it (SQLite can).
NUL = "a\x00b"
#: Levels of nesting beyond what ``orjson.dumps`` writes (255), well within what it reads (1024).
DEEP = 300
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256))
STRONG_PASSWORD = "Tr0ub4dor&3-horse-battery"
#: A plausible value of a field by its name, where the schema's type alone would not get a request past its
#: first check (a required e-mail, a password strong enough, a known enum).
PLAUSIBLE: dict[str, Any] = {
    "email": "someone@example.com",
    "password": STRONG_PASSWORD,
    "old_password": STRONG_PASSWORD,
    "new_password": STRONG_PASSWORD,
    "confirm_password": STRONG_PASSWORD,
    "code": "123456",
    "totp_code": "123456",
    "otp_code": "123456",
    "phone_number": "+447911123456",
    "verification_code": "12345",
    "doc_type": "passport",
    "doc_number": "AB123",
    "role": "member",
    "verb": "get",
    "path": "api/v2/peatio/account",
    "action": "accept",
    "category": "blacklist",
    "language": "en",
    "clientID": "PWA",
    "inviteCode": "abc",
    "sessionID": "",
    "topic": "session",
    "name": "resource",
    "id": 1,
}


def deep_object(levels: int = DEEP) -> Any:
    """``{"a": {"a": ... 1}}``, ``levels`` objects deep."""
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def deep_json_text(levels: int = DEEP) -> str:
    """A JSON object ``levels`` deep as text, compact (its arrays take two characters a level)."""
    return '{"a":' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


@dataclass(frozen=True)
class Field:
    """A documented parameter or body field: ``where`` is path, query, header, cookie or body."""

    where: str
    name: str
    schema: dict[str, Any]
    required: bool

    @property
    def json_text(self) -> bool:
        """A string holding JSON (``data``, ``metadata``), as its description says."""
        return "json" in self.schema.get("description", "").lower() and self.accepts("string")

    def accepts(self, kind: str) -> bool:
        schemas = self.schema.get("anyOf", [self.schema])
        return any(schema.get("type") == kind for schema in schemas)


@dataclass(frozen=True)
class Operation:
    """One operation of one of the service's OpenAPI documents."""

    document: str
    method: str
    path: str
    fields: tuple[Field, ...]
    media_types: tuple[str, ...]  # of the request body

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"

    def of(self, *where: str) -> list[Field]:
        return [field for field in self.fields if field.where in where]


def _deref(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _deref(document, {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}})
    return schema


def documented_operations(name: str) -> list[Operation]:
    """Every operation of the document ``name``, as checked in (``identity/openapi/<name>.json``)."""
    from identity.openapi import document_path
    from identity.openapi.build import METHODS

    document = orjson.loads(document_path(name).read_bytes())
    operations = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            fields = [
                Field(p["in"], p["name"], _deref(document, p.get("schema", {})), bool(p.get("required")))
                for p in operation.get("parameters", [])
            ]
            content = operation.get("requestBody", {}).get("content", {})
            if content:
                body = _deref(document, next(iter(content.values()))["schema"])
                required = set(body.get("required", ()))
                for field_name, schema in body.get("properties", {}).items():
                    fields.append(Field("body", field_name, _deref(document, schema), field_name in required))
            operations.append(Operation(name, method, path, tuple(fields), tuple(content)))
    return operations


def plausible(field: Field, uid: str) -> Any:
    """A value of ``field`` that passes its type (and, for the common names, its first checks)."""
    if field.name in PLAUSIBLE:
        return PLAUSIBLE[field.name]
    if field.name.endswith("uid") or field.name == "refid":
        return uid
    if field.json_text:
        return "{}"
    schema = field.schema.get("anyOf", [field.schema])[0]
    if "enum" in schema:
        return next(value for value in schema["enum"] if value)
    return {
        "integer": 1,
        "number": 1,
        "boolean": True,
        "object": {},
        "array": [],
    }.get(schema.get("type", "string"), "2030-01-01" if schema.get("format") == "date" else "abc")


def nul_text(field: Field, uid: str) -> str:
    """``field``'s plausible value with a NUL after it: past the checks of a prefix or a format that stop at
    the first character they do not expect (``startswith``, ``re.match``)."""
    return as_form_value(plausible(field, uid)) + "\x00"


def nul_values(field: Field, uid: str) -> list[tuple[str, Any]]:
    """The NUL cases of a JSON body field: in its string; for a field taking JSON, in a string and in a key
    inside it too."""
    text = nul_text(field, uid)
    if not (field.json_text or field.accepts("object") or field.accepts("array")):
        return [("NUL", text)]
    return [("NUL", text), ("NUL in a list", {"a": [text]}), ("NUL in a key", {text: "c"})]


def as_form_value(value: Any) -> str:
    """A JSON value as an urlencoded form or multipart field carries it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return orjson.dumps(value).decode()
