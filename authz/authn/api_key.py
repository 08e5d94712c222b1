"""The API-key authenticator (barong-behavior.md §2.5, with decisions.md): HMAC of nonce + kid.

Improvements over Barong: constant-time comparison, HS384/HS512, and each kid+nonce pair accepted once
within the nonce window (Redis ``SET NX`` with the window as TTL) unless replay rejection is turned off.

Keys of service accounts authenticate as the account (§5.3): it must be ``active`` and its owner must exist
and be active or pending (a backstop should a propagation of the owner's change have been missed); as in
Barong, no 2FA is asked of them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from authz.authn.base import (
    NOT_MINE,
    SubjectDirectory,
    _NotMine,
    service_account_principal,
    user_principal,
)
from authz.decision import DecisionRequest, Denied, Principal
from authz.nonce_ledger import NonceLedger
from authz.snapshots import MISSING, SnapshotCache
from identity.api_keys import SqlApiKeyRepository
from identity.callers import API_KEY_CLAIM
from identity.models import SERVICE_ACCOUNT_HOLDER, USER_HOLDER, ApiKey, ServiceAccount, User

KID_HEADER = "X-Auth-Apikey"
NONCE_HEADER = "X-Auth-Nonce"
SIGNATURE_HEADER = "X-Auth-Signature"

_RUBY_BLANKS = " \t\n\v\f\r"
_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def ruby_to_i(text: str) -> int:
    """Ruby's ``String#to_i``: the leading integer (after ASCII blanks, with an optional sign), else 0.

    Only ASCII digits count: ``str.isdigit`` and ``int`` would also read other scripts' digits.
    """
    text = text.lstrip(_RUBY_BLANKS)
    end = 1 if text[:1] in ("+", "-") else 0
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    try:
        return int(text[:end])
    except ValueError:  # no digits, or more than Python parses from a string
        return 0


def signature(secret: str, algorithm: str, nonce: str, kid: str) -> str:
    return hmac.new(secret.encode(), (nonce + kid).encode(), _DIGESTS.get(algorithm, hashlib.sha256)).hexdigest()


class ApiKeyAuthenticator:
    """Responsible when any of the three ``X-Auth-*`` headers is present (even empty)."""

    id = "api_key"

    def __init__(
        self,
        keys: SqlApiKeyRepository,
        subjects: SubjectDirectory[User],
        cache: SnapshotCache[str, ApiKey | None],
        nonces: NonceLedger,
        *,
        nonce_lifetime_ms: int,
        reject_replay: bool,
        clock: Callable[[], float] = time.time,
        service_accounts: SubjectDirectory[ServiceAccount] | None = None,
    ) -> None:
        self._keys = keys
        self._subjects = subjects
        self._service_accounts = service_accounts
        self._cache = cache
        self._nonces = nonces
        self._lifetime = nonce_lifetime_ms
        self._reject_replay = reject_replay
        self._clock = clock

    async def _key(self, kid: str) -> ApiKey | None:
        cached = self._cache.get(kid)
        if cached is not MISSING:
            return cached  # type: ignore[return-value]
        generation = self._cache.generation
        key = await self._keys.get(kid)
        self._cache.put(kid, key, generation)
        return key

    async def authenticate(self, request: DecisionRequest) -> Principal | _NotMine:
        headers = request.headers
        kid = headers.get(KID_HEADER)
        nonce = headers.get(NONCE_HEADER)
        sig = headers.get(SIGNATURE_HEADER)
        if kid is None and nonce is None and sig is None:
            return NOT_MINE
        if not (kid and kid.strip() and nonce and nonce.strip() and sig and sig.strip()):
            raise Denied(422, "authz.invalid_api_key_headers")

        # Header bytes beyond ASCII (decoded by aiohttp with surrogate escapes) are in no kid and no
        # timestamp; kept away from SQL, Redis and the signature, which would fail to encode them.
        key = await self._key(kid) if kid.isascii() else None
        if key is None:
            raise Denied(401, "authz.unexistent_apikey")
        stamp = ruby_to_i(nonce) if nonce.isascii() else 0
        if stamp <= 0:
            raise Denied(401, "authz.nonce_not_valid_timestamp")
        if abs(self._clock() * 1000 - stamp) >= self._lifetime:
            raise Denied(401, "authz.nonce_expired")
        expected = signature(key.secret, key.algorithm, nonce, kid)
        if not hmac.compare_digest(sig.encode("utf-8", "surrogateescape"), expected.encode()):
            raise Denied(401, "authz.invalid_signature")
        if not key.active:
            raise Denied(401, "authz.apikey_not_active")

        principal = await self._holder(key)
        if self._reject_replay and not await self._nonces.first_use(kid, nonce, 2 * self._lifetime):
            raise Denied(401, "authz.nonce_replayed")
        return principal

    async def _holder(self, key: ApiKey) -> Principal:
        """The key holder's principal; 401 ``authz.invalid_session`` or ``authz.disabled_2fa`` if unusable."""
        if key.holder_type == SERVICE_ACCOUNT_HOLDER and self._service_accounts is not None:
            account = await self._service_accounts.by_id(key.holder_id)
            if account is None or not account.usable or account.owner_id is None:
                raise Denied(401, "authz.invalid_session")
            owner = await self._subjects.by_id(account.owner_id)
            if owner is None or not owner.usable:
                raise Denied(401, "authz.invalid_session")
            return service_account_principal(account, self.id, (API_KEY_CLAIM, key.kid))
        holder = await self._subjects.by_id(key.holder_id) if key.holder_type == USER_HOLDER else None
        if holder is None or not holder.usable:
            raise Denied(401, "authz.invalid_session")
        if not holder.otp:
            raise Denied(401, "authz.disabled_2fa")
        return user_principal(holder, self.id, (API_KEY_CLAIM, key.kid))
