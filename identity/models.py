"""Plain value objects of the identity domain (no I/O).

Rows come out of the repositories as these frozen dataclasses; the decision pipeline caches them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: User states that may log in and pass the decision endpoint (Barong: active and pending).
USABLE_STATES = frozenset({"active", "pending"})

VERBS = ("GET", "POST", "DELETE", "PUT", "HEAD", "PATCH", "ALL")
ACTIONS = ("ACCEPT", "DROP", "AUDIT")

RESTRICTION_CATEGORIES = ("whitelist", "maintenance", "blacklist", "blocklogin")  # precedence order
RESTRICTION_SCOPES = ("all", "ip", "ip_subnet", "continent", "country")  # matching order
RESTRICTION_STATES = ("enabled", "disabled")
RESTRICTION_DEFAULT_CODES = {"continent": 423, "country": 423, "ip_subnet": 403, "ip": 401, "all": 401}
MAINTENANCE_DEFAULT_CODE = 471

API_KEY_ALGORITHMS = ("HS256", "HS384", "HS512")
#: ``api_keys.key_holder_account_type`` of keys held by users and by service accounts (Barong's class names).
USER_HOLDER = "User"
SERVICE_ACCOUNT_HOLDER = "ServiceAccount"


@dataclass(frozen=True, slots=True)
class User:
    """An account, as the decision pipeline and the JWT need it."""

    id: int
    uid: str
    email: str
    username: str | None
    role: str
    level: int
    state: str
    otp: bool
    referral_id: int | None = None
    data: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def usable(self) -> bool:
        return self.state in USABLE_STATES


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An HMAC API key; ``secret`` is the decrypted secret (never logged, never returned after creation)."""

    id: int
    kid: str
    algorithm: str
    state: str
    holder_type: str  # "User" or "ServiceAccount"
    holder_id: int
    secret: str = field(repr=False)
    scope: tuple[str, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.state == "active"


@dataclass(frozen=True, slots=True)
class Permission:
    """One role × verb × path-prefix rule with its action (ACCEPT, DROP or AUDIT)."""

    role: str
    verb: str
    path: str
    action: str
    topic: str | None = None
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Restriction:
    """A traffic restriction: category × scope × value with the HTTP status it answers."""

    category: str
    scope: str
    value: str
    code: int
    state: str = "enabled"
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def enabled(self) -> bool:
        return self.state == "enabled"


@dataclass(frozen=True, slots=True)
class Activity:
    """An audit trail entry (user or admin category)."""

    category: str  # user | admin
    topic: str
    action: str
    result: str  # succeed | failed | denied
    user_ip: str
    user_agent: str
    user_id: int | None = None
    target_uid: str | None = None
    user_ip_country: str | None = None
    data: str | None = None
    id: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Label:
    """A ``key: value`` tag on a user; private labels (set by the system and admins) drive level and state."""

    key: str
    value: str
    scope: str = "public"  # public | private
    user_id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    description: str | None = None  # set by admins (Barong's ``AdminLabelView``)


@dataclass(frozen=True, slots=True)
class Level:
    """One step of the verification ladder: a user reaches level ``id`` holding private label key:value."""

    id: int
    key: str
    value: str
    description: str | None = None


#: Label keys and values (Barong §4.7): 3–255 characters of ``[a-z0-9_-]`` after normalisation.
LABEL_TEXT_MIN = 3
LABEL_TEXT_MAX = 255

SERVICE_ACCOUNT_STATES = ("pending", "active", "banned", "deleted", "locked", "disabled")
PROFILE_STATES = ("drafted", "submitted", "verified", "rejected")


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A non-human account owned by a user; it cannot log in and acts only through its API keys."""

    id: int
    uid: str
    email: str
    role: str
    level: int
    state: str
    owner_id: int | None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def usable(self) -> bool:
        return self.state == "active"


@dataclass(frozen=True, slots=True)
class Profile:
    """A user's personal data (KYC profile); ``state`` is drafted, submitted, verified or rejected."""

    id: int
    user_id: int
    state: str
    first_name: str | None = None
    last_name: str | None = None
    dob: str | None = None  # ISO date, YYYY-MM-DD
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    metadata: str | None = None  # JSON object text
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Phone:
    """A user's phone number (E.164 digits, no "+"); verified once ``validated_at`` is set."""

    id: int
    user_id: int
    country: str
    number: str
    validated_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """An uploaded identity or address document; the file lives in the upload store under ``upload``."""

    id: int
    user_id: int
    doc_type: str
    upload: str  # storage name of the file
    doc_number: str | None = None
    doc_expire: str | None = None  # ISO date
    doc_category: str | None = None
    identificator: str | None = None
    metadata: str | None = None  # JSON object text
    content_type: str | None = None
    size: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DataStorage:
    """A titled piece of additional user data (Barong's ``data_storages``); one per (user, title)."""

    id: int
    user_id: int
    title: str
    data: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
