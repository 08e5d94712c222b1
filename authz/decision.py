"""The values a decision is made of: the request as the pipeline sees it, the principal, and the outcome.

A decision is ``Allow`` or ``Deny``; the deny reason is the Barong error key (``authz.invalid_session``).
Stages raise :class:`Denied` to stop the pipeline; the pipeline turns it into a ``Deny`` value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """The original request, as forwarded by the proxy: verb, path (no leading slash), headers, client IP."""

    method: str
    path: str
    headers: Mapping[str, str]  # case-insensitive (aiohttp's CIMultiDictProxy)
    cookies: Mapping[str, str]
    client_ip: str
    query_string: str = ""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (cookie or API key) or a service account (API key).

    ``claims`` are the subject attributes that go into the upstream JWT, as a tuple of pairs so that the
    principal is hashable and can key the signed-token cache.
    """

    kind: str  # "user" | "service_account"
    uid: str
    role: str
    user_id: int | None
    claims: tuple[tuple[str, object], ...]
    authenticator: str  # "cookie_session" | "api_key" | ...


@dataclass(frozen=True, slots=True)
class Allow:
    """Let the request through; ``headers`` go to the upstream (e.g. ``Authorization``)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    principal: Principal | None = None
    reason: str = "allowed"  # "allowed" | "pass_rule" | "whitelist" — for metrics


@dataclass(frozen=True, slots=True)
class Deny:
    """Refuse the request with ``status`` and the error key ``reason``."""

    status: int
    reason: str


Decision = Allow | Deny


class Denied(Exception):
    """Raised by a pipeline stage to stop the decision with a :class:`Deny`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.deny = Deny(status, reason)


UNAVAILABLE = Deny(503, "authz.unavailable")
