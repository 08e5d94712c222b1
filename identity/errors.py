"""Domain errors of the identity service.

Each error carries a Barong-style key (``identity.session.invalid_params``) and whatever data the caller
needs (``retry_after``); the HTTP status of every class is decided in one place, the web layer's error
table (``authz/http/errors.py``).  Domain code never imports aiohttp.
"""

from __future__ import annotations


class IdentityError(Exception):
    """Base of every domain error; ``keys`` are the error keys reported to the client."""

    key = "identity.error"

    def __init__(self, key: str | None = None) -> None:
        self.keys = [key or self.key]
        super().__init__(self.keys[0])


class ValidationFailed(IdentityError):
    """Input failed validation; every failing rule contributes a key."""

    key = "validation.failed"

    def __init__(self, keys: list[str] | str) -> None:
        keys = [keys] if isinstance(keys, str) else list(keys)
        super().__init__(keys[0] if keys else self.key)
        self.keys = keys or [self.key]


class LastSuperadminAccess(ValidationFailed):
    """A permission change after which no superadmin could reach the admin API's permissions to undo it."""

    key = "admin.permission.last_superadmin_access"

    def __init__(self) -> None:
        super().__init__(self.key)


class InvalidCredentials(IdentityError):
    """Unknown e-mail or wrong password (the two are not told apart)."""

    key = "identity.session.invalid_params"


class AccountNotUsable(IdentityError):
    """Correct password, but the account's state forbids logging in."""

    def __init__(self, state: str) -> None:
        self.state = state
        suffix = state if state in ("banned", "deleted") else "not_active"
        super().__init__(f"identity.session.{suffix}")


class OtpRequired(IdentityError):
    """2FA is on and no code was given."""

    key = "identity.session.missing_otp"


class InvalidOtp(IdentityError):
    """The 2FA code is wrong, or was already used."""

    key = "identity.session.invalid_otp"


class RateLimited(IdentityError):
    """A throttle refused the request; it may be made again in ``retry_after`` seconds."""

    def __init__(self, key: str | None = None, *, retry_after: int) -> None:
        super().__init__(key)
        self.retry_after = max(1, int(retry_after))


class TooManyAttempts(RateLimited):
    """Too many failed logins from this address or for this account."""

    key = "identity.session.too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after=retry_after)


class TooManyRequests(RateLimited):
    """Too many requests to mail or text one recipient, or from one client IP."""

    key = "identity.too_many_requests"


class SessionNotFound(IdentityError):
    """Logout without a live session."""

    key = "identity.session.not_found"


class RecordNotFound(IdentityError):
    """A looked-up record does not exist."""

    key = "record.not_found"


class Conflict(IdentityError):
    """A unique value is already taken."""

    key = "value.taken"


class AlreadyExists(IdentityError):
    """A record the caller may hold only once exists already (Barong answers these with 409)."""

    key = "record.exists"


class StorageUnavailable(IdentityError):
    """The database or Redis did not answer; nothing was written."""

    key = "identity.unavailable"


class MalformedRequest(IdentityError):
    """The request body could not be read (invalid JSON, wrong content type, too large)."""

    key = "request.malformed"


class CaptchaMissing(IdentityError):
    """A protected endpoint was called without a captcha response, or with one lacking fields."""

    key = "identity.captcha.required"


class CaptchaRejected(IdentityError):
    """The captcha provider did not confirm the response (or could not be asked)."""

    key = "identity.captcha.verification_failed"


class Auth0Rejected(IdentityError):
    """A verified Auth0 id_token that cannot log anyone in (no e-mail, or an unverified new one)."""

    key = "identity.session.auth0.invalid_params"


class BearerRejected(IdentityError):
    """A resource or admin request without a valid bearer JWT (or whose subject no longer exists)."""

    key = "jwt.decode_and_verify"


class AccessTokenRejected(IdentityError):
    """A missing, malformed, expired or foreign access token, or one whose session has ended."""

    key = "identity.access_token.invalid"


class RefreshTokenRejected(IdentityError):
    """A refresh token never issued, expired, already used, or whose session has ended."""

    key = "identity.refresh_token.invalid"


class BadRefreshToken(IdentityError):
    """A refresh token that is not even of the form this service issues."""

    key = "identity.refresh_token.malformed"


class InviteNotFound(IdentityError):
    """An invite code that does not exist or has expired."""

    key = "identity.invite_code.not_found"


class InviteExhausted(IdentityError):
    """An invite code whose uses are all taken (confirmed sign-ups and pending ones)."""

    key = "identity.invite_code.used_up"


class AbilityDenied(IdentityError):
    """The caller's role lacks the admin ability an endpoint needs (barong-behavior.md §8.1)."""

    key = "admin.ability.not_permitted"


class RequestNotPermitted(IdentityError):
    """The permission table refuses the caller's role this request to the own APIs (the gateway's key)."""

    key = "authz.invalid_permission"


class BadRequest(IdentityError):
    """A request the endpoint refuses before validation proper (Barong's 400 keys: 2FA off, no change...)."""


class Forbidden(IdentityError):
    """The caller may not do this."""


class PayloadTooLarge(IdentityError):
    """An upload beyond the configured size."""

    key = "resource.documents.file_too_large"


class ServiceUnavailable(IdentityError):
    """An outside service (SMS provider...) did not answer; nothing was changed."""

    key = "resource.unavailable"
