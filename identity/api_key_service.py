"""Managing one holder's API keys (barong-behavior.md §5): a user's own, or a service account's on behalf of
its owner.

Every write is guarded by the owner's TOTP code (``guard``) and announced on the change channel, so that the
decision endpoint stops (or starts) accepting the key at once.  Error keys carry the caller's prefix:
``resource.api_key`` for a user's keys, ``resource.service_accounts`` for a service account's.
"""

from __future__ import annotations

import builtins
from typing import Any

from identity.api_keys import ORDERABLE, SqlApiKeyRepository
from identity.changes import ChangePublisher
from identity.errors import BadRequest, RecordNotFound, ValidationFailed
from identity.models import API_KEY_ALGORITHMS, ApiKey, User
from identity.paging import Page, page_params
from identity.two_factor import TotpChecker

#: States a key may be given through the API (Barong accepted any string; only these two mean anything).
KEY_STATES = ("active", "inactive")


def parse_scope(text: str | None) -> tuple[str, ...] | None:
    """``"trade, withdraw"`` → ``("trade", "withdraw")``; None stays None (scope left as it is)."""
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def algorithm_errors(algorithm: str) -> list[str]:
    """Barong's model errors for an algorithm: ``algorithm.inclusion``, plus ``kid.blank`` when it is not an
    HMAC algorithm at all (Barong generates a kid only for ``HS*``)."""
    if algorithm.upper() in API_KEY_ALGORITHMS:
        return []
    return ["algorithm.inclusion"] if "HS" in algorithm.upper() else ["kid.blank", "algorithm.inclusion"]


class ApiKeyService:
    """Lists, creates, updates and deletes the API keys of one holder (a user or a service account)."""

    def __init__(self, keys: SqlApiKeyRepository, totp: TotpChecker, changes: ChangePublisher) -> None:
        self._keys = keys
        self._totp = totp
        self._changes = changes

    async def guard(self, owner: User, totp_code: str | None, prefix: str) -> None:
        """The owner must have 2FA on and give a right, unused TOTP code.

        ``400 <prefix>.2fa_disabled``, ``422 <prefix>.missing_totp``, ``422 <prefix>.invalid_totp``, and
        ``422 totp.error`` for a right code used before.
        """
        if not owner.otp:
            raise BadRequest(f"{prefix}.2fa_disabled")
        if totp_code is None or not totp_code.strip():
            raise ValidationFailed(f"{prefix}.missing_totp")
        if not await self._totp.verify(owner, totp_code.strip()):
            raise ValidationFailed(f"{prefix}.invalid_totp")

    async def list(
        self, holder_type: str, holder_id: int, params: dict[str, Any], error_prefix: str
    ) -> tuple[builtins.list[ApiKey], int, Page]:
        """A page of the holder's keys: ``ordering`` (asc|desc), ``order_by`` (a column), ``page``, ``limit``.

        Every bad parameter is reported at once: ``<prefix>.invalid_ordering``, ``<prefix>.invalid_attribute``
        and the bare pagination keys.
        """
        problems: list[str] = []
        ordering = params.get("ordering", "asc")
        if ordering not in ("asc", "desc"):
            problems.append(f"{error_prefix}.invalid_ordering")
        order_by = params.get("order_by", "id")
        if order_by not in ORDERABLE:
            problems.append(f"{error_prefix}.invalid_attribute")
        page = page_params(params, problems)
        if problems:
            raise ValidationFailed(problems)
        keys, total = await self._keys.list_for(
            holder_type, holder_id, order_by=order_by, ordering=ordering, offset=page.offset, limit=page.limit
        )
        return keys, total, page

    async def create(
        self,
        owner: User,
        holder_type: str,
        holder_id: int,
        holder_state: str,
        *,
        algorithm: str,
        scope: str | None,
        totp_code: str | None,
        prefix: str,
    ) -> ApiKey:
        """A new active key (its secret is in the result, and never again); ``scope`` is comma-separated.

        After the TOTP guard, the model's errors at once: ``algorithm.inclusion`` (HS256, HS384, HS512) and
        ``key_holder_account.invalid`` (the holder is not active).
        """
        await self.guard(owner, totp_code, prefix)
        problems = algorithm_errors(algorithm)
        if holder_state != "active":
            problems.append("key_holder_account.invalid")
        if problems:
            raise ValidationFailed(problems)
        key = await self._keys.create(
            holder_id=holder_id, holder_type=holder_type, algorithm=algorithm, scope=parse_scope(scope) or ()
        )
        await self._changes.api_key_changed(key.kid)
        return key

    async def update(
        self,
        owner: User,
        holder_type: str,
        holder_id: int,
        holder_state: str,
        kid: str,
        *,
        scope: str | None,
        state: str | None,
        totp_code: str | None,
        prefix: str,
    ) -> ApiKey:
        """Change the scope and/or state of one of the holder's keys.

        As Barong: the TOTP guard first, then ``404 record.not_found`` (unknown kid, or another holder's),
        then ``422 state.invalid`` for a state other than active/inactive, or active while the holder is not.
        """
        await self.guard(owner, totp_code, prefix)
        key = await self._keys.get_for(holder_type, holder_id, kid)
        if key is None:
            raise RecordNotFound("record.not_found")
        if state is not None and (state not in KEY_STATES or (state == "active" and holder_state != "active")):
            raise ValidationFailed("state.invalid")
        new_scope = parse_scope(scope)
        if new_scope is None and state is None:
            return key
        updated = await self._keys.update(kid, scope=new_scope, state=state)
        if updated is None:  # deleted meanwhile
            raise RecordNotFound("record.not_found")
        await self._changes.api_key_changed(kid)
        return updated

    async def delete(
        self, owner: User, holder_type: str, holder_id: int, kid: str, *, totp_code: str | None, prefix: str
    ) -> None:
        """Remove one of the holder's keys (TOTP guard first, then ``404 record.not_found``)."""
        await self.guard(owner, totp_code, prefix)
        key = await self._keys.get_for(holder_type, holder_id, kid)
        if key is None or not await self._keys.delete(kid):
            raise RecordNotFound("record.not_found")
        await self._changes.api_key_changed(kid)
