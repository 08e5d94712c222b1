"""The decision pipeline: restrictions → path rules → authenticators → Casbin authorizer → JWT mutator.

Every proxy reader (Envoy HTTP ext_authz, nginx auth_request, gRPC) builds a :class:`DecisionRequest`
and calls :meth:`DecisionPipeline.decide`; the answer is a value (``Allow`` / ``Deny``).  Storage that
does not answer makes the decision ``503 authz.unavailable``: the sidecar fails closed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from authz.audit import ActivityRecorder, admin_activity
from authz.authn.base import NOT_MINE, Authenticator
from authz.canonical import canonical_path
from authz.decision import UNAVAILABLE, Allow, Decision, DecisionRequest, Denied, Deny, Principal
from authz.geoip import GeoIP, GeoLocation
from authz.mutator_jwt import IdTokenMutator
from authz.path_rules import PathRules
from authz.policy import PolicyState
from identity.errors import StorageUnavailable

log = logging.getLogger(__name__)

# Both sets hold canonical paths (authz.canonical): the request path is canonical when they are read.
#: Requests to these paths skip restrictions (whitelink consumption must work from a restricted address).
RESTRICTION_EXEMPT_PATHS = frozenset({"api/v2/barong/identity/users/access"})
#: Every POST that signs in with a credential (password, Auth0 ID token): blocklogin restrictions refuse
#: these only (docs/security-model.md: not logout, not other requests).  The refresh (PUT v1/oauth)
#: continues a session that a login opened; it is not a login.
LOGIN_PATHS = frozenset(
    {
        "api/v2/barong/identity/sessions",
        "api/v2/barong/identity/sessions/auth0",
        "v1/oauth",
        "v1/oauth/create",
    }
)

DENY_BLOCKED = Deny(401, "authz.permission_denied")
DENY_PERMISSION = Deny(401, "authz.invalid_permission")
DENY_BAD_PATH = Deny(400, "authz.invalid_path")
DENY_METHOD_OVERRIDE = Deny(400, "authz.invalid_method_override")
#: Headers with which a client asks the upstream to serve another verb than the one decided on: Rack's
#: MethodOverride (Barong's and Peatio's stack) honours the first on POST, other frameworks the others.
METHOD_OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")
PASS = Allow(reason="pass_rule")


def valid_path(path: str) -> bool:
    """Refuse paths whose meaning changes under normalisation (dot or empty segments, NUL, backslashes,
    ``;`` path parameters).

    Prefix rules compare strings, so ``api/v2/barong/public/../admin`` would otherwise pass as public, and
    ``api/v2//barong/management`` (or ``api/v2/barong/admin//permissions``) would dodge a block or DROP
    rule while the upstream merges the slashes (Barong's router squeezes them before deciding).  Servlet
    containers (Tomcat, Jetty, Spring) drop ``;…`` from each segment before routing, so
    ``api/v2/peatio/public/..;/management`` would reach the management API: a ``;`` is refused outright
    (no path the service or Barong's upstreams serve has one), decoded or not.  A ``%`` left after the
    one decoding every reader applies came from a double encoding (``%252e%252e``), which an upstream that
    decodes twice would turn into dot segments: refused too.
    """
    if "\x00" in path or "\\" in path or "//" in path or ";" in path or "%" in path or path.startswith("/"):
        return False
    if "." not in path:
        return True
    return not any(segment in (".", "..") for segment in path.split("/"))


def _route(path: str) -> str:
    """``path`` as a router compares it: one trailing slash does not make another endpoint."""
    return path.removesuffix("/")


class DecisionPipeline:
    """Makes the allow/deny decision for one proxied request."""

    def __init__(
        self,
        policy: PolicyState,
        path_rules: PathRules,
        authenticators: Sequence[Authenticator],
        mutator: IdTokenMutator,
        recorder: ActivityRecorder,
        geoip: GeoIP,
    ) -> None:
        self._policy = policy
        self._rules = path_rules
        self._authenticators = tuple(authenticators)
        self._mutator = mutator
        self._recorder = recorder
        self._geoip = geoip

    async def decide(self, request: DecisionRequest) -> Decision:
        """The decision for ``request``; its path is replaced by its canonical form (authz.canonical)."""
        if not valid_path(request.path):
            return DENY_BAD_PATH
        headers = request.headers
        for name in METHOD_OVERRIDE_HEADERS:
            if name in headers:
                return DENY_METHOD_OVERRIDE
        request.path = canonical_path(request.path)
        try:
            self._check_restrictions(request)
            rule = self._rules.classify(request.path)
            if rule == "block":
                return DENY_BLOCKED
            if rule == "pass":
                return PASS
            principal = await self._authenticate(request)
            return self._authorize(request, principal)
        except Denied as denied:
            return denied.deny
        except StorageUnavailable:
            return UNAVAILABLE

    def _location(self, ip: str) -> GeoLocation:
        return self._geoip.lookup(ip)

    def _check_restrictions(self, request: DecisionRequest) -> None:
        restrictions = self._policy.restrictions
        if restrictions.is_empty or _route(request.path) in RESTRICTION_EXEMPT_PATHS:
            return
        location = self._location(request.client_ip) if restrictions.uses_location else GeoLocation.EMPTY
        match = restrictions.match(request.client_ip, location)
        if match is None or match.category == "whitelist":
            return
        is_login = request.method == "POST" and _route(request.path) in LOGIN_PATHS
        if match.category == "blocklogin" and not is_login:
            return
        raise Denied(match.code, f"authz.restrict.{match.category}")

    async def _authenticate(self, request: DecisionRequest) -> Principal:
        for authenticator in self._authenticators:
            principal = await authenticator.authenticate(request)
            if principal is not NOT_MINE:
                return principal  # type: ignore[return-value]
        raise Denied(401, "authz.invalid_session")

    def _authorize(self, request: DecisionRequest, principal: Principal) -> Decision:
        verdict = self._policy.permissions.decide(principal.role, request.method, request.path)
        if not verdict.allowed:
            if principal.kind == "user":
                self._audit(request, principal, "denied", None)
            return DENY_PERMISSION
        if verdict.audit and principal.kind == "user":
            self._audit(request, principal, "succeed", verdict.audit_topic)
        return Allow({"Authorization": self._mutator.header_for(principal)}, principal)

    def _audit(self, request: DecisionRequest, principal: Principal, result: str, topic: str | None) -> None:
        country = self._location(request.client_ip).country_name
        self._recorder.record(admin_activity(request, principal, result, topic, country))
